"""Score a ROOT file with a trained hepdl model and write the scores as a friend tree.

    python examples/score_root_file.py results/jets/cnn/model.pt ntuple.root [--tree events]

writes ``ntuple.scores.root`` (tree ``scores``: ``score`` for a binary model, ``score_<class>``
per class otherwise) next to the input, then prints a summary. The command-line form
for many files is ``hepdl score MODEL FILES... -o OUTDIR``.
"""

import argparse

import numpy as np

import hepdl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model file written by hepdl train")
    parser.add_argument("file", help="ROOT file to score")
    parser.add_argument("--tree", default=None, help="tree name (default: the one the model was trained on)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    model = hepdl.load_model(args.model, device=args.device)
    print(model)
    scores = model.predict(args.file, tree=args.tree)
    if model.binary:
        print(f"{len(scores)} entries; mean P({model.classes[1]}) = {scores.mean():.4f}; "
              f"fraction above 0.5: {np.mean(scores > 0.5):.4f}")
    else:
        counts = np.bincount(scores.argmax(axis=1), minlength=len(model.classes))
        print(f"{len(scores)} entries; most probable class: " + ", ".join(
            f"{c} {n}" for c, n in zip(model.classes, counts, strict=True)))
    output = (args.file[:-5] if args.file.endswith(".root") else args.file) + ".scores.root"
    hepdl.score_file(model, args.file, output, tree=args.tree)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
