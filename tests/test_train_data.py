"""The engine's data path: epoch shuffling (entries or blocks), batches gathered ahead in a thread,
splits resident on the device, and the training they give."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from toy_trained_models import SPEC, write_toy_file

from hepdl.models import build_model
from hepdl.represent import PreparedDataset, prepare_file
from hepdl.train import ArrayDataset, TrainSettings, train
from hepdl.train.data import (
    BatchFetcher,
    BatchLoader,
    EpochBatchSampler,
    device_resident,
    resident_bytes,
)

torch.set_num_threads(1)
MODEL = {"name": "jet_cnn", "channels": [4, 8], "head": [8], "seed": 3}


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data_path")
    write_toy_file(tmp / "toy.root", 300, seed=4)
    path = str(tmp / "shard")
    prepare_file("jets", str(tmp / "toy.root"), path, spec=SPEC, seed=1)
    return path


def test_block_shuffling_reads_runs_and_covers_every_entry():
    sampler = EpochBatchSampler(1000, 64, seed=2, block=16)
    sampler.set_epoch(3)
    batches = list(sampler)
    everything = np.concatenate(batches)
    assert sorted(everything.tolist()) == list(range(1000))  # each entry once
    for b in batches:
        assert np.all(np.diff(b) > 0)  # sorted: the shards are read forwards
        assert len(np.unique(b // 16)) <= 64 // 16 + 1  # whole blocks of 16 consecutive entries
    again = EpochBatchSampler(1000, 64, seed=2, block=16)
    again.set_epoch(3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))  # (seed, epoch) decides
    again.set_epoch(4)
    assert not np.array_equal(np.concatenate(list(again)), everything)
    plain = EpochBatchSampler(1000, 64, seed=2)  # block 1: the entries' own permutation, unsorted
    plain.set_epoch(3)
    assert not np.all(np.diff(next(iter(plain))) > 0)
    with pytest.raises(ValueError, match="block"):
        EpochBatchSampler(10, 4, block=0)


def test_the_loader_thread_gives_the_same_batches_in_order(shard):
    data = PreparedDataset([shard], "train", ("jet_images", "label"))
    sampler = EpochBatchSampler(len(data), 32, seed=5)
    weights = torch.arange(len(data), dtype=torch.float32)
    direct = [BatchFetcher(data, {"sample_weight": weights})[i] for i in sampler]
    ahead = list(BatchLoader(data, sampler, prefetch=3, extra={"sample_weight": weights}))
    assert len(ahead) == len(direct) == len(BatchLoader(data, sampler))
    for a, b in zip(ahead, direct, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # leaving early stops the thread; an error in it reaches the loop
    before = threading.active_count()
    for _ in BatchLoader(data, sampler, prefetch=2):
        break
    assert threading.active_count() == before

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def batch(self, indices):
            raise RuntimeError("shard unreadable")

    with pytest.raises(RuntimeError, match="shard unreadable"):
        list(BatchLoader(Broken(), EpochBatchSampler(10, 4)))


def _settings(**kw) -> TrainSettings:
    base = dict(model=MODEL, epochs=2, batch_size=32, device="cpu", progress="never", log_epochs=False,
                early_stopping_patience=None, seed=7)
    return TrainSettings(**{**base, **kw})


def _trained(shard, model=MODEL, **kw):
    arrays = ("jet_images", "label", "weight")
    result = train(build_model(model), PreparedDataset([shard], "train", arrays),
                   PreparedDataset([shard], "validation", arrays), _settings(model=model, **kw))
    return result.model.state_dict(), [r["val_loss"] for r in result.history]


def test_gathering_ahead_or_on_the_device_trains_the_same(shard):
    reference, losses = _trained(shard, prefetch_batches=0, data_on_device="never")
    for kw in ({"prefetch_batches": 3}, {"data_on_device": "always"}):
        state, again = _trained(shard, **kw)
        assert again == losses, kw
        assert all(torch.equal(state[k], reference[k]) for k in reference), kw


def test_a_resident_copy_holds_the_loaders_arrays(shard):
    data = PreparedDataset([shard], "train", ("jet_images", "label"))
    copy = device_resident(data, torch.device("cpu"))
    assert isinstance(copy, ArrayDataset) and len(copy) == len(data)
    assert torch.equal(copy.arrays["jet_images"], BatchFetcher(data)[np.arange(len(data))]["jet_images"])
    assert resident_bytes(data) == copy.arrays["jet_images"].nbytes + copy.arrays["label"].nbytes
    with pytest.raises(Exception, match="data_on_device"):
        TrainSettings(data_on_device="sometimes")


@pytest.mark.slow
def test_compiled_training_matches_eager(shard):
    # no dropout: compiled code draws its masks from another generator than eager torch
    model = {**MODEL, "dropout": 0.0}
    eager, eager_losses = _trained(shard, model)
    compiled, losses = _trained(shard, model, compile=True)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-4)
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-3, atol=1e-4)
