"""``hepdl prepare TASK``: write the prepared shard (memory-mapped arrays + meta.json) of one ROOT file."""

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
    p.add_argument("--storage", choices=("float32", "float16", "sparse"), default="float32",
                   help="float16: images, pixel maps and track sequences in half precision (half the disk); "
                   "sparse: besides, the images and pixel maps as their non-zero pixels (a twelfth of the "
                   "disk per jet); the loader expands them. Default float32")
    p.add_argument("--step-size", default="50 MB", help="entries or size per chunk (default: 50 MB)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads (read-ahead, writing, and representations that can use them, e.g. "
                   "N-subjettiness); the shard is the same (default: 1)")
    p.add_argument("--no-progress", action="store_true")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hepdl.represent.representations import task_representations
    from hepdl.tasks import TASKS

    p = sub.add_parser("prepare", help="turn one ROOT file into a prepared shard (the task's representations)")
    kinds = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in TASKS.values():
        reps = task_representations(task)
        arrays = ", ".join(a for rep in reps for a in rep.arrays)
        t = kinds.add_parser(task.name, help=f"{task.description}: {arrays}")
        _common(t)
        for rep in reps:
            for option in rep.options:
                kwargs = dict(option.kwargs)
                if "choices" not in kwargs:
                    kwargs.setdefault("metavar", option.path.rsplit(".", 1)[-1].upper())
                t.add_argument(option.flag, dest=f"rep:{rep.key}:{option.path}", help=option.help, **kwargs)
        t.set_defaults(func=run)


def _spec_from_args(args: argparse.Namespace) -> dict:
    """``--spec`` updated with the representation shortcuts given (dest ``rep:<section>:<dotted path>``)."""
    spec = _parse_spec(args.spec)
    for dest, value in vars(args).items():
        if not dest.startswith("rep:") or value is None:
            continue
        _, section, path = dest.split(":", 2)
        *parents, leaf = path.split(".")
        node = spec.setdefault(section, {})
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = list(value) if isinstance(value, (list, tuple)) else value
    return spec


def run(args: argparse.Namespace) -> int:
    from hepdl.represent.prepared import prepare_file

    step = int(args.step_size) if str(args.step_size).isdigit() else args.step_size
    meta = prepare_file(
        args.task,
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
        storage=args.storage,
    )
    print(json.dumps({"output": args.output, "n_entries": meta["n_entries"], "arrays": meta["arrays"]}, indent=1))
    return 0
