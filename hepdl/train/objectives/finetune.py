"""Fine-tuning (transfer learning): a network pre-trained on the large simulation sample,
its head replaced, trained on a small labelled control sample.

The body is frozen for the first ``freeze_body_epochs`` epochs (only the fresh head
learns, on the pre-trained features; the body's batch-norm statistics are kept too),
then unfrozen with every learning rate scaled by ``lr_factor`` so the pre-trained
features move only a little. The control sample is a labelled, data-like sample: in
the default pipeline a subset (``max_train_entries``) of the data shards' train split.
This is the one place where labels of data are used for training, and it is the
point of a control sample (e.g. a tag-and-probe or enriched selection in real data);
the domain-adversarial path ("adapt") never reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hepdl.errors import ConfigError
from hepdl.models.init import initialise_weights
from hepdl.models.interface import BodyAndHead
from hepdl.models.model_file import load_model_file
from hepdl.train.objectives.base import classes_of, model_inputs_of, register_objective
from hepdl.train.objectives.classify import Classify

if TYPE_CHECKING:
    from hepdl.train.settings import TrainSettings


def load_for_finetuning(path: str | os.PathLike, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a model file, in training mode, with its head re-initialised from ``seed``.

    Returns ``(model, info)`` as :func:`~hepdl.models.load_model_file` does. The body keeps
    the pre-trained weights; the head (same architecture) starts afresh, so it learns the
    control sample's decision on top of the pre-trained features.
    """
    model, info = load_model_file(path)
    if not isinstance(model, BodyAndHead):
        raise ValueError(f"{os.fspath(path)}: model {info['architecture'].get('name')!r} has no body/head to fine-tune")
    head = model.head
    last = head[-1] if isinstance(head, nn.Sequential) else head
    initialise_weights(head, int(seed), output_layers=(last,))
    return model.train(), info


@register_objective
class Finetune(Classify):
    """Classification with the body frozen for ``freeze_body_epochs`` epochs, then every LR times ``lr_factor``."""

    name = "finetune"

    def __init__(self, input_key: str | Sequence[str], n_classes: int = 2, *, freeze_body_epochs: int = 2,
                 lr_factor: float = 0.1) -> None:
        super().__init__(input_key, n_classes)
        self.freeze_body_epochs = int(freeze_body_epochs)
        self.lr_factor = float(lr_factor)

    @classmethod
    def build_model(cls, settings: TrainSettings, meta: Mapping[str, Any], n_classes: int, where: str) -> nn.Module:
        """The network of ``settings.finetune_from`` with its head re-initialised; it must read the data's arrays."""
        from hepdl.models import model_input_keys

        if not settings.finetune_from:
            raise ConfigError("objective 'finetune': set finetune_from to the pre-trained model file")
        try:
            model, _ = load_for_finetuning(settings.finetune_from, settings.seed)
        except ValueError as err:
            raise ConfigError(f"finetune_from: {err}") from err
        for key in model_input_keys(model):
            if key not in meta["arrays"]:
                raise ConfigError(f"finetune_from: {settings.finetune_from} reads {key!r}, which {where} does not hold")
        if classes_of(model) != n_classes:
            raise ConfigError(f"finetune_from: {settings.finetune_from} has {model.n_outputs} outputs, "
                              f"the data have {n_classes} classes")
        return model

    @classmethod
    def for_model(cls, model: nn.Module, settings: TrainSettings | None) -> Finetune:
        schedule = {} if settings is None else {"freeze_body_epochs": settings.freeze_body_epochs,
                                                "lr_factor": settings.finetune_lr_factor}
        return cls(model_inputs_of(model), classes_of(model), **schedule)

    def begin_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        body = model.body
        frozen = epoch < self.freeze_body_epochs
        for p in body.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            body.eval()  # batch-norm running statistics stay the pre-trained ones too
            return
        for group in optimizer.param_groups:
            # the flag lives in the optimizer's state, so a resumed run does not scale twice
            if not group.get("finetune_lr_scaled", False):
                group["lr"] *= self.lr_factor
                group["finetune_lr_scaled"] = True

