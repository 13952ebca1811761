"""``hepdl prepare jets|neutrino``: write the prepared shard (memory-mapped arrays + meta.json) of one ROOT file."""

from __future__ import annotations

import argparse
import json

from hepdl.errors import ConfigError


def _parse_fields(items: list[str] | None) -> dict[str, str] | None:
    """``--fields`` takes a JSON object, or ``logical=branch`` pairs."""
    if not items:
        return None
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        try:
            value = json.loads(items[0])
        except json.JSONDecodeError as err:
            raise ConfigError(f"--fields: not valid JSON ({err})") from None
        if not isinstance(value, dict):
            raise ConfigError("--fields: the JSON must be an object {logical: branch}")
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--fields: {item!r} is not logical=branch")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parse_spec(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--spec: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ConfigError("--spec: the JSON must be an object of representation settings")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="ROOT file to prepare (one shard per file)")
    p.add_argument("--tree", default="events", help="tree or RNTuple name (default: events)")
    p.add_argument("--output", required=True, help="shard directory to write")
    p.add_argument("--seed", type=int, required=True, help="seed of the train/validation/test split")
    p.add_argument("--fractions", type=float, nargs=3, default=(0.6, 0.2, 0.2), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--fields", nargs="+", help="field mapping: a JSON object or logical=branch pairs")
    p.add_argument("--domain", "--variant", dest="domain", choices=("sim", "data"), help="recorded in meta.json")
    p.add_argument("--spec", help="JSON object of representation settings overriding the defaults")
    p.add_argument("--step-size", default="50 MB", help="entries or size per chunk (default: 50 MB)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads (jets: N-subjettiness, read-ahead, writing); the shard is the same (default: 1)")
    p.add_argument("--no-progress", action="store_true")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn one ROOT file into a prepared shard (jet images/tracks/expert variables or pixel maps)",
    )
    kinds = p.add_subparsers(dest="kind", metavar="TASK", required=True)
    jets = kinds.add_parser("jets", help="jet images, track sequences, expert jet variables")
    _common(jets)
    jets.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    jets.add_argument("--half-width", type=float, help="image half-width in eta and phi (default 1.2)")
    jets.add_argument("--channels", nargs="+", help="image channels: calo_et trk_pt trk_count")
    jets.add_argument("--normalise", choices=("jet", "sum", "none"))
    jets.add_argument("--track-length", type=int, help="tracks kept per jet (default 30)")
    jets.add_argument("--track-sort", choices=("pt", "abs_d0"))
    jets.add_argument("--nsub-axes", choices=("onepass_kt", "kt", "cone"), help="N-subjettiness axes (default onepass_kt)")
    jets.set_defaults(func=run)
    nu = kinds.add_parser("neutrino", help="two-view pixel maps and event variables")
    _common(nu)
    nu.add_argument("--planes", type=int, help="planes per view in the window (default 100)")
    nu.add_argument("--cells", type=int, help="cells in the window (default 80)")
    nu.add_argument("--threshold", type=float, help="hit energy that starts the event window")
    nu.set_defaults(func=run)


def _spec_from_args(args: argparse.Namespace) -> dict:
    spec = _parse_spec(args.spec)

    def put(section: str, key: str, value) -> None:
        if value is not None:
            spec.setdefault(section, {})[key] = value

    if args.kind == "jets":
        put("image", "size", list(args.image_size) if args.image_size else None)
        put("image", "half_width", args.half_width)
        put("image", "channels", args.channels)
        put("image", "normalise", args.normalise)
        put("tracks", "length", args.track_length)
        put("tracks", "sort_by", args.track_sort)
        if args.nsub_axes:
            spec.setdefault("expert", {}).setdefault("nsubjettiness", {})["axes"] = args.nsub_axes
    else:
        put("pixel_map", "planes", args.planes)
        put("pixel_map", "cells", args.cells)
        put("pixel_map", "threshold", args.threshold)
    return spec


def run(args: argparse.Namespace) -> int:
    from hepdl.represent.prepared import prepare_file

    step = int(args.step_size) if str(args.step_size).isdigit() else args.step_size
    meta = prepare_file(
        args.kind,
        args.input,
        args.output,
        tree=args.tree,
        fields=_parse_fields(args.fields),
        spec=_spec_from_args(args),
        seed=args.seed,
        fractions=args.fractions,
        step_size=step,
        domain=args.domain,
        progress=not args.no_progress,
        threads=args.threads,
    )
    print(json.dumps({"output": args.output, "n_entries": meta["n_entries"], "arrays": meta["arrays"]}, indent=1))
    return 0
