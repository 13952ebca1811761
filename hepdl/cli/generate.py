"""``hepdl generate jets|neutrino``: write the embedded default samples as ROOT files."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate the default jet or neutrino samples as ROOT files")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    jets = kinds.add_parser("jets", help="boosted W/top vs QCD jets from Pythia 8 + FastJet")
    jets.add_argument("--variant", choices=("sim", "data"), default="sim")
    jets.add_argument("--n-signal", type=int, required=True, help="signal jets to write")
    jets.add_argument("--n-background", type=int, required=True, help="QCD jets to write")
    jets.add_argument("--signal", choices=("w", "top"), default="w", help="signal process")
    jets.add_argument("--pt-min", type=float, default=250.0, help="jet pT window, GeV")
    jets.add_argument("--pt-max", type=float, default=350.0)
    jets.add_argument("--seed", type=int, required=True)
    jets.add_argument("--layout", choices=("jets", "events"), default="jets",
                      help="jets: one entry per selected jet (tree 'events', the default); events: whole events, "
                      "NanoAOD/PFNano-style (tree 'Events': FatJet, PFCands with FatJetPFCands index links, "
                      "GenPart with mother indices); --n-signal/--n-background then count events")
    jets.add_argument("-o", "--output", required=True, help="ROOT file to write (tree 'events', or 'Events')")
    jets.set_defaults(func=run_jets)

    nu = kinds.add_parser("neutrino", help="neutrino interactions in a segmented two-view detector")
    nu.add_argument("--variant", choices=("sim", "data"), default="sim")
    nu.add_argument("--n-events", type=int, required=True)
    nu.add_argument("--nutau", action="store_true", help="include nu_tau CC as a fourth class")
    nu.add_argument("--seed", type=int, required=True)
    nu.add_argument("-o", "--output", required=True, help="ROOT file to write (tree 'events')")
    nu.set_defaults(func=run_neutrino)


def run_jets(args: argparse.Namespace) -> int:
    from hepdl.generate import generate_jets

    summary = generate_jets(
        args.output,
        variant=args.variant,
        n_signal=args.n_signal,
        n_background=args.n_background,
        signal=args.signal,
        pt_min=args.pt_min,
        pt_max=args.pt_max,
        seed=args.seed,
        layout=args.layout,
    )
    print(json.dumps(summary, indent=1))
    return 0


def run_neutrino(args: argparse.Namespace) -> int:
    from hepdl.generate import generate_neutrino

    summary = generate_neutrino(
        args.output, variant=args.variant, n_events=args.n_events, include_nutau=args.nutau, seed=args.seed
    )
    print(json.dumps(summary, indent=1))
    return 0
