"""The training loop's bookkeeping: the best epoch and its patience count, and its round trip through a checkpoint."""

from __future__ import annotations

import torch

from hepdl.train.run_state import BestEpoch, EpochTally, RunState


def test_best_epoch_keeps_the_best_weights_and_counts_patience():
    model = torch.nn.Linear(2, 1)
    best = BestEpoch()
    best.update(1.0, 1, model, min_delta=0.1, patience=2)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight += 1.0  # training goes on after the best epoch
    best.update(0.95, 2, model, min_delta=0.1, patience=2)  # better, but by less than min_delta
    assert (best.epoch, best.val_loss, best.wait, best.stopped_early) == (1, 1.0, 1, False)
    assert all(torch.equal(best.state[k], kept[k]) for k in kept)
    best.update(0.5, 3, model, min_delta=0.1, patience=2)
    assert (best.epoch, best.val_loss, best.wait) == (3, 0.5, 0)
    assert torch.equal(best.state["weight"], model.weight.detach())
    best.update(0.6, 4, model, min_delta=0.1, patience=2)
    assert not best.stopped_early
    best.update(0.45, 5, model, min_delta=0.1, patience=2)
    assert best.stopped_early and best.wait == 2 and best.epoch == 3
    # without patience it never stops
    never = BestEpoch()
    for epoch in range(1, 6):
        never.update(1.0, epoch, model, min_delta=0.0, patience=None)
    assert (never.epoch, never.wait, never.stopped_early) == (1, 4, False)


def test_run_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    state = RunState(epoch=2, tally=EpochTally(loss_sum=1.5, batches=3, samples=192, seconds=0.25),
                     history=[{"epoch": 1, "train_loss": 0.7, "val_loss": 0.69}, {"epoch": 2, "train_loss": 0.6}],
                     best=BestEpoch(val_loss=0.6, epoch=1, state={"w": torch.arange(3.0)}, wait=1))
    saved = state.to_checkpoint()
    assert saved["batch"] == 3 and set(saved) == {"epoch", "batch", "partial", "history", "best"}
    torch.save(saved, tmp_path / "state.pt")
    back = RunState.from_checkpoint(torch.load(tmp_path / "state.pt", weights_only=True))
    assert (back.epoch, back.tally, back.history) == (state.epoch, state.tally, state.history)
    assert (back.best.val_loss, back.best.epoch, back.best.wait, back.best.stopped_early) == (0.6, 1, 1, False)
    assert torch.equal(back.best.state["w"], torch.arange(3.0))
    # a fresh run: nothing seen yet, no best weights
    fresh = RunState.from_checkpoint(RunState().to_checkpoint())
    assert fresh.best.state is None and fresh.best.val_loss == float("inf") and fresh.tally == EpochTally()
