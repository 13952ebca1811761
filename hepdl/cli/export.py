"""``hepdl export onnx``: write a trained model as ONNX, checked against torch with onnxruntime.

The ONNX graph reads the prepared arrays (inputs named after them, dynamic batch axis)
and returns ``probabilities`` (and ``logits``). The command scores real prepared entries
with both torch and onnxruntime and fails (exit status 2, nothing written) if any
probability or logit differs by more than ``--atol``. The entries come from
``--check-data`` (prepared shard directories or ROOT files), else from the training
shards or ROOT files named in the model file, if they still exist.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model (ONNX), with a torch-vs-onnxruntime parity check",
        description="Export a model file to ONNX (TorchScript-based exporter, dynamic batch size); fails if "
        "onnxruntime and torch disagree on real inputs by more than --atol.",
    )
    p.add_argument("format", choices=("onnx",), help="export format")
    p.add_argument("model", help="model file (model.pt written by hepdl train)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--check-data", nargs="+",
                   help="prepared shard directories or ROOT files for the parity check "
                        "(default: the training data named in the model file)")
    p.add_argument("--n-check", type=int, default=256, help="entries to compare (default: 256)")
    p.add_argument("--atol", type=float, default=1e-5, help="largest allowed |torch - onnxruntime| (default: 1e-5)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--no-logits", action="store_true", help="export the probabilities only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.errors import InputError
    from hepdl.onnx_export import default_check_sources, example_inputs, export_onnx
    from hepdl.scoring import load_model

    model = load_model(args.model, device="cpu")
    sources = args.check_data or default_check_sources(model)
    if not sources:
        raise InputError(f"{args.model}: the training data it names no longer exist; give real inputs for the "
                         "parity check with --check-data SHARD_DIR|FILE.root")
    example = example_inputs(model, sources, n=args.n_check)
    report = export_onnx(model, args.output, example, with_logits=not args.no_logits, opset=args.opset,
                         atol=args.atol)
    print(f"hepdl export: wrote {args.output}; parity on {report['n_checked']} entries: "
          + ", ".join(f"{k[len('max_'):]} {v:.2e}" for k, v in report.items()
                      if k.startswith("max_")), file=sys.stderr)
    return 0
