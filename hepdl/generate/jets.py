"""Boosted W (or top) jets and QCD jets from Pythia 8 + FastJet, with towers and tracks.

pp collisions at 13 TeV. Signal: ``W' -> W Z`` with ``W -> q q'`` and ``Z -> nu nu``
(the W' mass is chosen so that the W recoils with pT at the top of the jet window,
where the two-body Jacobian peak sits), or hadronic ``t tbar``. Background: QCD
2 -> 2 with a pT-hat window around the jet window. MPI and hadronisation are on.

Each batch of events goes through :mod:`hepdl.generate.jet_detector` (pile-up
overlay, towers, noise, tracks), the towers are clustered with anti-kT (FastJet's
awkward interface, one call per batch), and the (at most two) leading jets inside
the pT window and ``|eta| < eta_max`` are kept; a signal jet must also lie within
``DeltaR < 0.6`` of the hadronic W (top). Per jet the file holds the towers and
tracks within ``DeltaR < R`` of the jet axis.

The ``data`` variant differs from ``sim`` as real data differ from simulation: the
ATLAS A14 tune instead of Monash 2013, twice the pile-up, a detector with a 3%
energy scale offset, worse resolution, more calorimeter noise and lower tracking
efficiency (see :data:`~hepdl.generate.jet_detector.DATA`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import awkward as ak
import numpy as np

from hepdl.errors import ConfigError, HepdlError
from hepdl.generate.jet_detector import (
    DATA,
    INVISIBLE_IN_CALO,
    SIM,
    DetectorResponse,
    calorimeter_towers,
    delta_phi,
    overlay_pileup,
    pseudorapidity,
    reconstructed_tracks,
)
from hepdl.io import TreeWriter

E_CM = 13000.0
M_W, M_Z = 80.4, 91.19
MATCH_DR = 0.6
TRIM_R, TRIM_FCUT = 0.2, 0.05
JETS_PER_EVENT = 2
# Jets per event in the event-level layout (the leading ones above half the window's pT).
EVENT_JETS = 4
WRITE_CHUNK = 500
# Uses of each generated minimum-bias event as pile-up (see overlay_pileup).
PILEUP_REUSE = 4

TUNES = {
    "sim": ["Tune:pp = 14"],  # Monash 2013
    # ATLAS A14 (NNPDF2.3LO, internal PDF): different FSR alphaS, MPI and string
    # parameters, plus a softer fragmentation function, so jet substructure moves.
    "data": ["Tune:pp = 21", "StringZ:aLund = 0.55", "StringPT:sigma = 0.37"],
}
RESPONSES = {"sim": SIM, "data": DATA}


def wprime_mass(p_star: float) -> float:
    """W' mass whose two-body decay to W Z gives each boson momentum ``p_star`` in the W' frame."""
    lo, hi = M_W + M_Z, 20 * (p_star + M_W + M_Z)
    for _ in range(100):  # bisection on the two-body momentum formula; scalar, 100 steps
        m = 0.5 * (lo + hi)
        p = math.sqrt(max((m**2 - (M_W + M_Z) ** 2) * (m**2 - (M_W - M_Z) ** 2), 0.0)) / (2 * m)
        lo, hi = (m, hi) if p < p_star else (lo, m)
    return 0.5 * (lo + hi)


def process_settings(process: str, pt_min: float, pt_max: float) -> list[str]:
    """Pythia settings of one hard process ("w", "top" or "qcd") for a jet window [pt_min, pt_max]."""
    pthat = [
        f"PhaseSpace:pTHatMin = {0.85 * pt_min:.1f}",
        f"PhaseSpace:pTHatMax = {1.15 * pt_max:.1f}",
    ]
    if process == "w":
        # The W pT has a Jacobian peak at p*; putting p* a little above pt_max lets
        # ISR recoil and pile-up smear the peak into the window rather than out of it.
        m = wprime_mass(pt_max + 0.05 * (pt_max - pt_min))
        return [
            "NewGaugeBoson:ffbar2Wprime = on",
            "Wprime:coup2WZ = 1",  # without it W' -> W Z has zero width and zero cross-section
            f"34:m0 = {m:.1f}",
            "34:onMode = off",
            "34:onIfMatch = 23 24",
            "24:onMode = off",
            "24:onIfAny = 1 2 3 4 5",
            "23:onMode = off",
            "23:onIfAny = 12 14 16",
        ]
    if process == "top":
        return [
            "Top:gg2ttbar = on",
            "Top:qqbar2ttbar = on",
            "24:onMode = off",
            "24:onIfAny = 1 2 3 4 5",
            *pthat,
        ]
    if process == "qcd":
        return ["HardQCD:all = on", *pthat]
    raise ConfigError(f"unknown jet process {process!r} (expected 'w', 'top' or 'qcd')")


def derived_seed(seed: int, *stream: int) -> int:
    """A Pythia seed (1 .. 900 000 000) for one random stream, derived from the user's seed."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(1, dtype=np.uint32)[0]
    return int(state % 900_000_000) + 1


def make_pythia(settings: list[str], seed: int, what: str):
    """An initialised Pythia instance; every setting and init() are checked, never silently ignored."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    base = [
        "Beams:eCM = 13000.",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        # Quiet also hides init failures (e.g. a zero W' -> W Z width), hence the init() check below.
        "Print:quiet = on",
        "PartonLevel:MPI = on",
        "HadronLevel:all = on",
    ]
    # Tune:pp first: it resets the parameters it owns, so later lines must win.
    ordered = (
        [s for s in settings if s.startswith("Tune:")]
        + base
        + [s for s in settings if not s.startswith("Tune:")]
    )
    for line in ordered:
        if not pythia.readString(line):
            raise HepdlError(f"Pythia ({what}): setting {line!r} was not accepted")
    with _stdout_to_stderr():
        ok = pythia.init()
    if not ok:
        raise HepdlError(
            f"Pythia ({what}): init() failed (zero cross-section or bad settings); settings: {ordered}"
        )
    return pythia


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Route C++ writes to stdout (Pythia, the FastJet banner) to stderr, keeping stdout for JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def next_events(pythia, n: int):
    """``n`` events as an awkward array (Pythia's ``nextBatch``), refilling any that failed."""
    batches = []
    got = 0
    for _ in range(10):
        with _stdout_to_stderr():
            b = pythia.nextBatch(n - got)
        batches.append(b)
        got += len(b)
        if got >= n:
            break
    else:
        raise HepdlError(f"Pythia: could not generate {n} events (too many failed events)")
    return batches[0] if len(batches) == 1 else ak.concatenate(batches)


def final_state(events, eta_max: float) -> dict[str, np.ndarray]:
    """Flat arrays of the final-state particles with ``|eta| < eta_max`` and their event index."""
    prt = events.prt[events.prt.status > 0]
    counts = ak.to_numpy(ak.num(prt))
    flat = {
        "id": ak.to_numpy(ak.flatten(prt.id)),
        "px": ak.to_numpy(ak.flatten(prt.p.px)),
        "py": ak.to_numpy(ak.flatten(prt.p.py)),
        "pz": ak.to_numpy(ak.flatten(prt.p.pz)),
        "e": ak.to_numpy(ak.flatten(prt.p.e)),
        # Production vertices (mm): Pythia sets them for decay products, so B/D
        # hadron and V0 daughters come out displaced; None means "at the origin".
        "vx": ak.to_numpy(ak.fill_none(ak.flatten(prt.vProd.px), 0.0)),
        "vy": ak.to_numpy(ak.fill_none(ak.flatten(prt.vProd.py), 0.0)),
        "vz": ak.to_numpy(ak.fill_none(ak.flatten(prt.vProd.pz), 0.0)),
        "event": np.repeat(np.arange(len(counts)), counts),
    }
    flat["eta"] = pseudorapidity(flat["px"], flat["py"], flat["pz"])
    keep = np.abs(flat["eta"]) < eta_max
    return {k: v[keep] for k, v in flat.items()}


def truth_targets(events, process: str) -> ak.Array:
    """Per event, (eta, phi) of the hadronically decaying W (or of the tops) a signal jet must match."""
    prt = events.prt
    pid = np.abs(prt.id)
    first_daughter = np.abs(prt.id[prt.daughter1])
    if process == "w":
        mask = (pid == 24) & (first_daughter >= 1) & (first_daughter <= 5)
    else:  # the last top copy is the one whose daughters are no longer tops
        mask = (pid == 6) & (first_daughter != 6) & (prt.daughter1 > 0)
    t = prt[mask]
    eta = np.arcsinh(t.p.pz / np.maximum(np.hypot(t.p.px, t.p.py), 1e-12))
    return ak.zip({"eta": eta, "phi": np.arctan2(t.p.py, t.p.px), "pt_x": t.p.px, "pt_y": t.p.py})


@dataclass
class ClassStats:
    """Running counters and sums for the summary; constant memory whatever the sample size."""

    events: int = 0
    jets: int = 0
    seconds: float = 0.0
    sums: dict = field(default_factory=dict)
    mass_hist: np.ndarray = field(default_factory=lambda: np.zeros(400, dtype=np.int64))

    def add(self, jets: dict) -> None:
        n = len(jets["jet_pt"])
        self.jets += n
        observables = {
            "jet_mass": jets["jet_mass"],
            "jet_pt": jets["jet_pt"],
            "n_towers": ak.to_numpy(ak.num(jets["calo_e"])),
            "tower_e_sum": ak.to_numpy(ak.sum(jets["calo_e"], axis=1)),
            "n_tracks": ak.to_numpy(ak.num(jets["trk_pt"])),
            "track_pt_sum": ak.to_numpy(ak.sum(jets["trk_pt"], axis=1)),
            "n_charged_in_cone": jets["n_charged"],
        }
        for k, v in observables.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(np.sum(v))
        self.mass_hist += np.histogram(jets["jet_mass"], bins=400, range=(0, 400))[0]

    def summary(self, sigma_pb: float) -> dict:
        n = max(self.jets, 1)
        cdf = np.cumsum(self.mass_hist)
        median = float(np.searchsorted(cdf, cdf[-1] / 2) + 0.5) if cdf[-1] else None
        eff = self.jets / self.events if self.events else 0.0
        return {
            "jets": self.jets,
            "events_generated": self.events,
            "jets_per_event": eff,
            "cross_section_pb": sigma_pb,
            "jet_cross_section_pb": sigma_pb * eff,
            "seconds": self.seconds,
            "jets_per_second": self.jets / self.seconds if self.seconds else None,
            "mean": {k: v / n for k, v in self.sums.items()},
            "median_jet_mass": median,
        }


class JetSource:
    """One hard process with its pile-up overlay and detector: batches of events in, jets out."""

    def __init__(
        self,
        process: str,
        variant: str,
        seed: int,
        *,
        pt_min: float,
        pt_max: float,
        eta_max: float,
        jet_r: float,
        pileup,
    ) -> None:
        code = {"w": 1, "top": 2, "qcd": 3}[process]
        vcode = {"sim": 0, "data": 1}[variant]
        self.process = process
        self.label = 0 if process == "qcd" else 1
        self.response: DetectorResponse = RESPONSES[variant]
        self.pt_min, self.pt_max, self.eta_max, self.jet_r = pt_min, pt_max, eta_max, jet_r
        self.pythia = make_pythia(
            TUNES[variant] + process_settings(process, pt_min, pt_max),
            derived_seed(seed, vcode, code),
            f"{process} {variant}",
        )
        self.pileup = pileup
        self.rng = np.random.default_rng([seed, vcode, code, 7])
        self.n_events = 0
        self.id_offset = code << 40
        self.charge_of: dict[int, float] = {}
        self.stats = ClassStats()

    def charges(self, ids: np.ndarray) -> np.ndarray:
        # One particle-data lookup per species (a few dozen), not per particle.
        species, inverse = np.unique(ids, return_inverse=True)
        for s in species:
            if int(s) not in self.charge_of:
                self.charge_of[int(s)] = self.pythia.particleData.charge(int(s))
        return np.array([self.charge_of[int(s)] for s in species])[inverse]

    def pileup_particles(self, n_events: int) -> dict[str, np.ndarray]:
        """Minimum-bias particles overlaid on each event: Poisson(mu) interactions per event.

        A fresh pool of ``1 / PILEUP_REUSE`` as many minimum-bias events as overlays is
        generated per batch (Pythia's minimum-bias generation dominates the cost).
        """
        r = self.response
        n_pu = self.rng.poisson(r.pileup_mu, size=n_events)
        total = int(n_pu.sum())
        if total == 0:
            return {}
        n_pool = max(math.ceil(total / PILEUP_REUSE), 1)
        minimum_bias = next_events(self.pileup, n_pool)
        pool = final_state(minimum_bias, r.calo_eta_max)
        return overlay_pileup(pool, len(minimum_bias), n_pu, r, self.rng)

    def jets(self, n_events: int) -> dict | None:
        """Generate ``n_events`` events and return their selected jets as per-jet arrays.

        None when no event of the batch came near the window (signal pre-selection).
        """
        t0 = time.perf_counter()
        events = next_events(self.pythia, n_events)
        n_generated = len(events)
        number = np.arange(n_generated)
        if self.label == 1:
            # Skip the detector (and its expensive pile-up overlay) for events whose W/top
            # is far outside the window: their jets could never be selected and matched.
            t = truth_targets(events, self.process)
            tpt = np.hypot(t.pt_x, t.pt_y)
            near = (
                (tpt > 0.7 * self.pt_min)
                & (tpt < 1.3 * self.pt_max)
                & (np.abs(t.eta) < self.eta_max + 0.5)
            )
            number = np.flatnonzero(ak.to_numpy(ak.any(near, axis=1)))
            events = events[number]
        n_events = len(events)
        if n_events == 0:
            self.n_events += n_generated
            self.stats.events += n_generated
            self.stats.seconds += time.perf_counter() - t0
            return None
        particles, (t_event, t_eta, t_phi, t_e), trk = self.reconstruct(events)
        charged = particles["charge"] != 0

        j = self.select(self.cluster(t_event, t_eta, t_phi, t_e, n_events), events)
        sel_event = j["event"]

        # Towers and tracks within DeltaR < R of each selected jet axis.
        t_counts = np.bincount(t_event, minlength=n_events)
        towers = ak.unflatten(ak.zip({"eta": t_eta, "phi": t_phi, "e": t_e}), t_counts)[sel_event]
        tracks = ak.unflatten(
            ak.zip({k: trk[k] for k in ("pt", "eta", "phi", "d0", "z0", "charge")}),
            np.bincount(trk["event"], minlength=n_events),
        )[sel_event]
        towers = towers[self.within_r(towers, j)]
        tracks = tracks[self.within_r(tracks, j)]

        # Truth count for the summary/tests: charged particles in the cone that a track could come from.
        p_counts = np.bincount(particles["event"][charged], minlength=n_events)
        cands = ak.unflatten(
            ak.zip({"eta": particles["eta"][charged], "phi": particles["phi"][charged]}),
            p_counts,
        )[sel_event]
        n_charged = ak.to_numpy(ak.sum(self.within_r(cands, j), axis=1))

        f32 = np.float32
        out = {
            "calo_eta": ak.values_astype(towers.eta, f32),
            "calo_phi": ak.values_astype(towers.phi, f32),
            "calo_e": ak.values_astype(towers.e, f32),
            "trk_pt": ak.values_astype(tracks.pt, f32),
            "trk_eta": ak.values_astype(tracks.eta, f32),
            "trk_phi": ak.values_astype(tracks.phi, f32),
            "trk_d0": ak.values_astype(tracks.d0, f32),
            "trk_z0": ak.values_astype(tracks.z0, f32),
            "trk_charge": ak.values_astype(tracks.charge, np.int32),
            "jet_pt": j["pt"].astype(f32),
            "jet_eta": j["eta"].astype(f32),
            "jet_phi": j["phi"].astype(f32),
            "jet_mass": j["mass"].astype(f32),
            "label": np.full(len(sel_event), self.label, dtype=np.int32),
            "weight": np.ones(len(sel_event), dtype=f32),
            "event_id": (
                self.id_offset + (self.n_events + number[sel_event]) * JETS_PER_EVENT + j["rank"]
            ).astype(np.int64),
            "n_charged": n_charged,
        }
        self.n_events += n_generated
        self.stats.events += n_generated
        self.stats.seconds += time.perf_counter() - t0
        return out

    def reconstruct(self, events) -> tuple[dict, tuple, dict]:
        """Pile-up overlay and detector for a batch of events: (particles, towers, tracks).

        Towers are ``(event, eta, phi, e)`` and tracks a dict of arrays, both in event order.
        """
        r = self.response
        n_events = len(events)
        hard = final_state(events, r.calo_eta_max)
        pu = self.pileup_particles(n_events)
        particles = {k: np.concatenate([hard[k], pu[k]]) if pu else hard[k] for k in hard}
        particles["charge"] = self.charges(particles["id"])
        particles["phi"] = np.arctan2(particles["py"], particles["px"])

        visible = ~np.isin(np.abs(particles["id"]), INVISIBLE_IN_CALO)
        towers = calorimeter_towers(
            particles["event"][visible],
            particles["eta"][visible],
            particles["phi"][visible],
            particles["e"][visible],
            n_events,
            r,
            self.rng,
        )
        charged = particles["charge"] != 0
        trk = reconstructed_tracks(
            *(
                particles[k][charged]
                for k in ("event", "px", "py", "pz", "charge", "vx", "vy", "vz")
            ),
            r,
            self.rng,
        )
        order = np.argsort(trk["event"], kind="stable")
        trk = {k: v[order] for k, v in trk.items()}
        return particles, towers, trk

    def event_record(self, n_events: int) -> dict | None:
        """Generate ``n_events`` events and return them whole, NanoAOD/PFNano-style (see
        :mod:`hepdl.generate.event_layout`): every jet, candidates with index links, GenPart.

        Signal events whose W/top is far outside the pT window are skipped, as for jets.
        """
        from hepdl.generate.event_layout import event_arrays

        t0 = time.perf_counter()
        events = next_events(self.pythia, n_events)
        n_generated = len(events)
        if self.label == 1:
            t = truth_targets(events, self.process)
            tpt = np.hypot(t.pt_x, t.pt_y)
            near = (tpt > 0.7 * self.pt_min) & (tpt < 1.3 * self.pt_max) & (np.abs(t.eta) < self.eta_max + 0.5)
            events = events[np.flatnonzero(ak.to_numpy(ak.any(near, axis=1)))]
        self.n_events += n_generated
        self.stats.events += n_generated
        if len(events) == 0:
            self.stats.seconds += time.perf_counter() - t0
            return None
        _, towers, trk = self.reconstruct(events)
        jets = self.cluster(*towers, len(events), n_keep=EVENT_JETS)
        out = event_arrays(events, jets, towers, trk, self.jet_r)
        out["process"] = np.full(len(events), self.label, dtype=np.int32)
        self.stats.jets += len(events)  # counts events here: the unit of the event-level layout
        self.stats.seconds += time.perf_counter() - t0
        return out

    def cluster(self, t_event, t_eta, t_phi, t_e, n_events: int, n_keep: int = JETS_PER_EVENT) -> ak.Array:
        """Anti-kT on the towers (massless), then trimming; all events of the batch in one FastJet call.

        Returns the leading ``JETS_PER_EVENT`` jets of every event as a flat record array
        (``event``, ``rank``, trimmed ``pt, eta, phi, mass``). Trimming (kT subjets of
        R = 0.2, dropping those below 5% of the jet pT, as ATLAS does for large-R jets)
        keeps the jet mass a W-mass measurement under pile-up; the stored towers
        are not trimmed.
        """
        import fastjet

        pt = t_e / np.cosh(t_eta)
        momenta = ak.unflatten(
            ak.zip(
                {
                    "px": pt * np.cos(t_phi),
                    "py": pt * np.sin(t_phi),
                    "pz": pt * np.sinh(t_eta),
                    "E": t_e,
                }
            ),
            np.bincount(t_event, minlength=n_events),
        )
        with _stdout_to_stderr():  # the FastJet banner goes to stdout on first use
            seq = fastjet.ClusterSequence(
                momenta, fastjet.JetDefinition(fastjet.antikt_algorithm, self.jet_r)
            )
            jets = seq.inclusive_jets(0.5 * self.pt_min)
            constituents = seq.constituents(0.5 * self.pt_min)
        order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)[:, :n_keep]
        jets, constituents = jets[order], constituents[order]
        n_jets = ak.to_numpy(ak.num(jets))
        jets = ak.flatten(jets)
        constituents = ak.flatten(constituents, axis=1)  # one list of towers per jet

        jet_pt = ak.to_numpy(np.hypot(jets.px, jets.py))
        if len(jet_pt):
            with _stdout_to_stderr():
                sub = fastjet.ClusterSequence(
                    constituents, fastjet.JetDefinition(fastjet.kt_algorithm, TRIM_R)
                ).inclusive_jets(0.0)
            sub = sub[np.hypot(sub.px, sub.py) > TRIM_FCUT * jet_pt]
            px, py, pz, e = (ak.to_numpy(ak.sum(sub[c], axis=1)) for c in ("px", "py", "pz", "E"))
        else:
            px = py = pz = e = np.zeros(0)
        tpt = np.hypot(px, py)
        return {
            "event": np.repeat(np.arange(n_events), n_jets),
            "rank": ak.to_numpy(ak.flatten(ak.local_index(order, axis=1))),
            "pt": tpt,
            "eta": np.arcsinh(pz / np.maximum(tpt, 1e-12)),
            "phi": np.arctan2(py, px),
            "mass": np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0)),
        }

    def select(self, jets: dict, events) -> dict:
        """Leading jets in the window (and, for signal, matched to the W/top)."""
        keep = (
            (jets["pt"] > self.pt_min)
            & (jets["pt"] < self.pt_max)
            & (np.abs(jets["eta"]) < self.eta_max)
        )
        if self.label == 1:
            targets = truth_targets(events, self.process)[jets["event"]]
            dr2 = (targets.eta - jets["eta"]) ** 2 + delta_phi(targets.phi, jets["phi"]) ** 2
            keep &= ak.to_numpy(ak.fill_none(ak.min(dr2, axis=1), np.inf)) < MATCH_DR**2
        return {k: v[keep] for k, v in jets.items()}

    def within_r(self, objects: ak.Array, j: ak.Array) -> ak.Array:
        """Mask of the (per-jet jagged) objects with DeltaR < R to their jet axis."""
        deta = objects.eta - j["eta"]
        dphi = delta_phi(objects.phi, j["phi"])
        return deta**2 + dphi**2 < self.jet_r**2


def _take(chunk: dict, n: int) -> dict:
    return {k: v[:n] for k, v in chunk.items()}


def _concat(chunks: list[dict]) -> dict:
    out = {}
    for k in chunks[0]:
        vals = [c[k] for c in chunks]
        out[k] = ak.concatenate(vals) if isinstance(vals[0], ak.Array) else np.concatenate(vals)
    return out


def generate_jets(
    output: str | os.PathLike,
    *,
    variant: Literal["sim", "data"] = "sim",
    n_signal: int,
    n_background: int,
    seed: int,
    signal: Literal["w", "top"] = "w",
    pt_min: float = 250.0,
    pt_max: float = 350.0,
    eta_max: float = 2.0,
    jet_r: float = 1.0,
    progress: bool = True,
    layout: Literal["jets", "events"] = "jets",
) -> dict:
    """Write a jet sample (tree ``events``, one entry per jet) and return a JSON-able summary.

    ``layout="events"`` writes whole events instead (tree ``Events``, NanoAOD/PFNano-style
    collections, :mod:`hepdl.generate.event_layout`): ``n_signal`` and ``n_background`` count
    events, every event's jets are kept (no window or truth selection: that is the job of
    ``hepdl jets-from-events``), and a flat ``process`` branch says which sample it came from.

    Signal and background jets are generated in alternating batches and written in
    chunks of about 500 jets, so memory does not grow with the sample size; the file
    appears under ``output`` only when complete. The same arguments give the same
    file. Entries are ordered by generation (blocks of signal and background), so
    downstream splits must shuffle.
    """
    from tqdm import tqdm

    if variant not in RESPONSES:
        raise ConfigError(f"generate_jets: variant must be 'sim' or 'data', not {variant!r}")
    if signal not in ("w", "top"):
        raise ConfigError(f"generate_jets: signal must be 'w' or 'top', not {signal!r}")
    if n_signal < 0 or n_background < 0 or n_signal + n_background == 0:
        raise ConfigError(
            f"generate_jets: need n_signal, n_background >= 0 and some jets, got {n_signal}, {n_background}"
        )
    if layout not in ("jets", "events"):
        raise ConfigError(f"generate_jets: layout must be 'jets' or 'events', not {layout!r}")
    if not 0 < pt_min < pt_max:
        raise ConfigError(f"generate_jets: need 0 < pt_min < pt_max, got {pt_min}, {pt_max}")
    if not 0 < jet_r <= 1.5 or not 0 < eta_max <= 2.5:
        raise ConfigError(
            f"generate_jets: jet_r must be in (0, 1.5] and eta_max in (0, 2.5], got {jet_r}, {eta_max}"
        )

    t_start = time.perf_counter()
    response = RESPONSES[variant]
    pileup = make_pythia(
        TUNES[variant] + ["SoftQCD:nonDiffractive = on"],
        derived_seed(seed, {"sim": 0, "data": 1}[variant], 9),
        f"pile-up {variant}",
    )
    kw = dict(pt_min=pt_min, pt_max=pt_max, eta_max=eta_max, jet_r=jet_r, pileup=pileup)
    sources = [
        (JetSource(signal, variant, seed, **kw), n_signal),
        (JetSource("qcd", variant, seed, **kw), n_background),
    ]
    if layout == "events":
        return _generate_event_layout(output, sources, variant, seed, progress, t_start)
    remaining = [n for _, n in sources]
    # Jets per event seen so far, to size the next batch; starts from a typical value.
    yield_guess = [0.4, 0.8]
    buffer: list[dict] = []
    buffered = 0
    with (
        TreeWriter(output, "events") as out,
        tqdm(
            total=n_signal + n_background,
            desc=f"jets ({variant})",
            unit="jet",
            file=sys.stderr,
            disable=not progress,
        ) as bar,
    ):
        while any(remaining):
            for i, (source, _) in enumerate(sources):
                if remaining[i] == 0:
                    continue
                n_events = int(np.clip(math.ceil(1.2 * remaining[i] / yield_guess[i]), 10, 100))
                full = source.jets(n_events)
                n_new = 0 if full is None else len(full["jet_pt"])
                if source.n_events > 2000 + 200 * (source.stats.jets + n_new):
                    raise HepdlError(
                        f"generate_jets: {source.process} jets are not being accepted "
                        f"({source.stats.jets + n_new} jets in {source.n_events} events); "
                        "check the pT window"
                    )
                yield_guess[i] = max((source.stats.jets + n_new) / source.n_events, 0.02)
                if full is None:
                    continue
                chunk = _take(full, remaining[i])
                n = len(chunk["jet_pt"])
                source.stats.add(chunk)
                remaining[i] -= n
                bar.update(n)
                buffer.append(chunk)
                buffered += n
            if buffered >= WRITE_CHUNK or not any(remaining):
                merged = _concat(buffer)
                merged.pop("n_charged")
                out.extend(merged)
                buffer, buffered = [], 0

    seconds = time.perf_counter() - t_start
    sig, bkg = sources[0][0], sources[1][0]
    return {
        "output": os.fspath(output),
        "tree": "events",
        "variant": variant,
        "signal_process": {"w": "W' -> W Z, W -> qq', Z -> nu nu", "top": "t tbar, W -> qq'"}[
            signal
        ],
        "background_process": "QCD 2->2 (HardQCD:all)",
        "n_signal": sig.stats.jets,
        "n_background": bkg.stats.jets,
        "seconds": seconds,
        "jets_per_second": (sig.stats.jets + bkg.stats.jets) / seconds,
        "signal": sig.stats.summary(sig.pythia.infoPython().sigmaGen() * 1e9),
        "background": bkg.stats.summary(bkg.pythia.infoPython().sigmaGen() * 1e9),
        "settings": {
            "seed": seed,
            "sqrt_s_gev": E_CM,
            "pt_min": pt_min,
            "pt_max": pt_max,
            "eta_max": eta_max,
            "jet_r": jet_r,
            "jet_algorithm": "anti-kT on calorimeter towers (after pile-up and noise)",
            "jets_per_event": JETS_PER_EVENT,
            "signal_match_dr": MATCH_DR,
            "trimming": {"r_sub": TRIM_R, "f_cut": TRIM_FCUT},
            "pileup": "SoftQCD:nonDiffractive, Poisson(mu) per event, each minimum-bias event "
            f"used up to ~{PILEUP_REUSE} times with random azimuth, z reflection and vertex z",
            "wprime_mass_gev": wprime_mass(pt_max + 0.05 * (pt_max - pt_min))
            if signal == "w"
            else None,
            "signal_pythia": process_settings(signal, pt_min, pt_max),
            "background_pythia": process_settings("qcd", pt_min, pt_max),
        },
        "variant_settings": {"tune": TUNES[variant], "detector": response.as_dict()},
        "data_vs_sim": {
            "tune": f"sim {TUNES['sim']} vs data {TUNES['data']}",
            "pileup_mu": f"sim {SIM.pileup_mu} vs data {DATA.pileup_mu}",
            "calo_scale": f"sim {SIM.calo_scale} vs data {DATA.calo_scale}",
            "calo_resolution": f"sim {SIM.calo_stochastic}/sqrt(E) + {SIM.calo_constant} vs data {DATA.calo_stochastic}/sqrt(E) + {DATA.calo_constant}",
            "calo_noise_gev": f"sim {SIM.calo_noise} vs data {DATA.calo_noise}",
            "track_efficiency": f"sim {SIM.track_efficiency} vs data {DATA.track_efficiency}",
        },
    }


def _generate_event_layout(output, sources, variant: str, seed: int, progress: bool, t_start: float) -> dict:
    """Whole events of both processes, in alternating batches, written chunk by chunk."""
    from tqdm import tqdm

    remaining = [n for _, n in sources]
    with (
        TreeWriter(output, "Events") as out,
        tqdm(total=sum(remaining), desc=f"events ({variant})", unit="event", file=sys.stderr,
             disable=not progress) as bar,
    ):
        while any(remaining):
            for i, (source, _) in enumerate(sources):
                if remaining[i] == 0:
                    continue
                batch = source.event_record(int(np.clip(remaining[i], 10, 100)))
                if source.n_events > 2000 + 200 * source.stats.jets:
                    raise HepdlError(f"generate_jets: {source.process} events are not being accepted "
                                     f"({source.stats.jets} in {source.n_events}); check the pT window")
                if batch is None:
                    continue
                n = min(remaining[i], len(batch["process"]))
                source.stats.jets -= len(batch["process"]) - n
                out.extend({k: v[:n] for k, v in batch.items()})
                remaining[i] -= n
                bar.update(n)
    seconds = time.perf_counter() - t_start
    sig, bkg = sources[0][0], sources[1][0]
    return {
        "output": os.fspath(output),
        "tree": "Events",
        "layout": "events",
        "variant": variant,
        "n_signal_events": sig.stats.jets,
        "n_background_events": bkg.stats.jets,
        "events_generated": {"signal": sig.n_events, "background": bkg.n_events},
        "seconds": seconds,
        "settings": {"seed": seed, "pt_min": sig.pt_min, "pt_max": sig.pt_max, "eta_max": sig.eta_max,
                     "jet_r": sig.jet_r, "jets_per_event": EVENT_JETS},
    }
