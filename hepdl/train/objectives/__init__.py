"""Training objectives, one module each, registered by name (the ``objective`` setting).

classify, autoencode, adapt (domain-adversarial), decorrelate (mass-decorrelating adversary),
finetune (pre-trained body, new head). See :mod:`hepdl.train.objectives.base` for the interface.
"""

from hepdl.train.objectives.adapt import NO_LABEL, Adapt, DomainDataset, balanced_domain_loss
from hepdl.train.objectives.autoencode import Autoencode
from hepdl.train.objectives.base import (
    OBJECTIVES,
    Objective,
    make_objective,
    objective_class,
    register_objective,
)
from hepdl.train.objectives.classify import Classify
from hepdl.train.objectives.decorrelate import Decorrelate
from hepdl.train.objectives.finetune import Finetune, load_for_finetuning

__all__ = [
    "NO_LABEL",
    "OBJECTIVES",
    "Adapt",
    "Autoencode",
    "Classify",
    "Decorrelate",
    "DomainDataset",
    "Finetune",
    "Objective",
    "balanced_domain_loss",
    "load_for_finetuning",
    "make_objective",
    "objective_class",
    "register_objective",
]
