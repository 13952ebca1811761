"""The embedded default samples, written as ROOT files in the layout of a user's ntuples.

* :func:`generate_jets`: boosted W (or top) jets and QCD jets from Pythia 8 and
  FastJet, with calorimeter towers and tracks (``--variant sim`` or ``data``).
* :func:`generate_neutrino`: neutrino interactions in a segmented two-view detector.
"""

from hepdl.generate.jets import generate_jets
from hepdl.generate.neutrino import generate_neutrino

__all__ = ["generate_jets", "generate_neutrino"]
