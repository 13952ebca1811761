"""``hepdl jets-from-events``: event-level files (NanoAOD, PFNano, Delphes-like) to one entry per jet.

    hepdl jets-from-events nano.root --tree Events --jets FatJet --output fatjets.root \\
        --pt-min 300 --eta-max 2.4 --truth GenPart

writes tree ``events`` with one entry per selected jet: ``jet_<field>`` for every field of the
collection, constituents as ``<prefix>_<field>`` (``--constituents``; by index links with
``--links``, else by DeltaR < ``--dr``), ``label`` and ``truth_pdgid`` from ``--truth``, and
``event_file``, ``event_entry``, ``jet_index`` (and ``run``, ``luminosityBlock``, ``event``
where present), so that ``hepdl scores-to-events`` puts scores back per event.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "jets-from-events",
        help="explode a jet collection of event-level files into one entry per jet (constituents, truth label)",
        description="One entry per selected jet of --jets, constituents attached by index links or DeltaR, "
        "a label from the truth collection; streamed in chunks, written atomically.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="event-level ROOT files (glob patterns allowed)")
    p.add_argument("--tree", required=True, help="event tree, e.g. Events")
    p.add_argument("--jets", required=True, help="jet collection (counter nX, branches X_*), e.g. FatJet")
    p.add_argument("--output", required=True, help="output ROOT file (tree --output-tree, one entry per jet)")
    p.add_argument("--output-tree", default="events", help="tree name in the output (default: events)")
    sel = p.add_argument_group("selection")
    sel.add_argument("--pt-min", type=float, help="keep jets with pt > PT_MIN")
    sel.add_argument("--eta-max", type=float, help="keep jets with |eta| < ETA_MAX")
    sel.add_argument("--leading", type=int, help="keep only the N highest-pT jets of each event (before the cuts)")
    sel.add_argument("--jet-fields", nargs="+", help="jet fields to write (default: every X_* branch)")
    con = p.add_argument_group("constituents")
    con.add_argument("--constituents", nargs="+", default=[], metavar="PREFIX=COLLECTION[:CUT]",
                     help="constituent collections, written as PREFIX_<field>; CUT keeps a subset, "
                     "e.g. 'calo=PFCands:charge == 0' 'trk=PFCands:charge != 0'")
    con.add_argument("--links", help="index-link collection (PFNano: FatJetPFCands, fields jetIdx and "
                     "<collection>Idx); without it constituents are matched by DeltaR")
    con.add_argument("--dr", type=float, default=0.8, help="DeltaR cone for constituents without links (default 0.8)")
    tru = p.add_argument_group("truth")
    tru.add_argument("--truth", metavar="COLLECTION", help="generator collection (GenPart-style) for the label")
    tru.add_argument("--truth-mode", choices=("decay", "parton"), default="decay",
                     help="decay: label 1 when all hadronic decay products of a mother lie in the jet; "
                     "parton: when a particle of --mothers lies in the jet (default: decay)")
    tru.add_argument("--mothers", type=int, nargs="+", default=[6, 23, 24, 25],
                     help="|pdgId| of the mothers (default: 6 23 24 25, top Z W H)")
    tru.add_argument("--products", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                     help="|pdgId| of the decay products that must lie in the jet (default: quarks 1-5)")
    tru.add_argument("--min-products", type=int, default=2, help="products a mother needs (default 2)")
    tru.add_argument("--status", type=int, nargs="+", default=[], help="only mothers with these statuses")
    tru.add_argument("--truth-dr", type=float, default=0.8, help="DeltaR of a product to the jet axis (default 0.8)")
    p.add_argument("--step-size", default="50 MB", help="entries or size per chunk read (default: 50 MB)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hepdl.io.events import ConstituentSource, jets_from_events
    from hepdl.io.jet_matching import JetSelection, TruthMatch

    truth = None
    if args.truth:
        truth = TruthMatch(collection=args.truth, mode=args.truth_mode, mothers=tuple(args.mothers),
                           products=tuple(args.products), dr=args.truth_dr, min_products=args.min_products,
                           status=tuple(args.status))
    summary = jets_from_events(
        args.inputs,
        args.output,
        tree=args.tree,
        jets=args.jets,
        selection=JetSelection(args.pt_min, args.eta_max, args.leading),
        constituents=[ConstituentSource.parse(c) for c in args.constituents],
        links=args.links,
        dr=args.dr,
        truth=truth,
        jet_fields=args.jet_fields,
        step_size=int(args.step_size) if str(args.step_size).isdigit() else args.step_size,
        output_tree=args.output_tree,
    )
    print(json.dumps(summary, indent=1))
    return 0
