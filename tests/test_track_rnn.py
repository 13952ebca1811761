"""Track RNN, truncated BPTT and the combined calorimeter + track tagger."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepdl.errors import ConfigError
from hepdl.models import (
    CombinedTagger,
    TrackRNN,
    build_model,
    complete_model_config,
    load_model_file,
    save_model,
)
from hepdl.train import ArrayDataset, TrainSettings, train
from hepdl.train.engine import set_tbptt_window

torch.set_num_threads(1)


def random_tracks(lengths: list[int], length: int, n_features: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tracks = torch.randn(len(lengths), length, n_features, generator=gen)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tracks[~mask] = 0.0
    return tracks, mask


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padding_never_reaches_the_output(cell: str) -> None:
    model = TrackRNN(cell=cell, hidden=16, embed=8, layers=2, seed=3).eval()
    lengths = [0, 1, 5, 12, 12]
    tracks, mask = random_tracks(lengths, 12)
    ref = model(tracks, mask)
    # other padding values, including ones that would poison any arithmetic they enter
    poisoned = tracks.clone()
    poisoned[~mask] = torch.tensor([float("nan"), 1e30, -1e30, float("inf"), 7.0, 0.0]).repeat(int((~mask).sum()), 1)
    assert torch.equal(model(poisoned, mask), ref)
    # padding interleaved with the real tracks (their order kept) and a longer padded tail
    gen = torch.Generator().manual_seed(1)
    moved_t, moved_m = torch.zeros(5, 20, 6), torch.zeros(5, 20, dtype=torch.bool)
    for j, n in enumerate(lengths):
        slots = torch.sort(torch.randperm(20, generator=gen)[:n]).values
        moved_t[j, slots] = tracks[j, :n]
        moved_m[j, slots] = True
        moved_t[j, ~moved_m[j]] = torch.randn(int((~moved_m[j]).sum()), 6, generator=gen) * 100
    torch.testing.assert_close(model(moved_t, moved_m), ref, rtol=1e-5, atol=1e-6)
    # the real tracks' order does matter: the model is not blind to its input
    swapped = tracks.clone()
    swapped[3, [0, 4]] = tracks[3, [4, 0]]
    assert not torch.allclose(model(swapped, mask)[3], ref[3])


def test_jets_with_zero_and_one_track() -> None:
    model = TrackRNN(hidden=8, embed=4, seed=1)
    model.train()
    tracks, mask = random_tracks([0, 1], 30)
    tracks[0] = 5.0  # values of an empty jet are padding: never read
    out = model(tracks, mask)
    assert out.shape == (2,) and torch.isfinite(out).all()
    out.sum().backward()
    assert model.body.no_track.grad is not None and model.body.no_track.grad.abs().sum() > 0
    model.eval()
    expected = model.head(model.body.no_track.unsqueeze(0)).squeeze()
    torch.testing.assert_close(model(tracks[:1], mask[:1])[0], expected)
    # a batch of only empty jets
    assert torch.isfinite(model(torch.zeros(3, 30, 6), torch.zeros(3, 30, dtype=torch.bool))).all()


def test_tbptt_window_stops_the_gradient_and_keeps_the_output() -> None:
    window = 50
    model = TrackRNN(hidden=16, embed=0, bidirectional=False, dropout=0.0, seed=2)  # no ReLU: no dead input
    tracks, mask = random_tracks([300, 120, 30], 300, seed=4)
    model.eval()
    full = model(tracks, mask).detach()

    model.train()
    x = tracks.clone().requires_grad_(True)
    out = model.body(x, mask, window=window)
    out.sum().backward()
    touched = x.grad.abs().sum(-1) > 0
    # each jet's gradient reaches back to the start of the window holding its last track only
    for j, (n, first) in enumerate([(300, 250), (120, 100), (30, 0)]):
        assert not touched[j, :first].any(), f"jet {j}: gradient leaked past the window"
        assert touched[j, first:n].all()
        assert not touched[j, n:].any()
    # the windows change the gradient, not the function
    model.body.tbptt_window = window
    torch.testing.assert_close(model(tracks, mask).detach(), full, rtol=1e-5, atol=1e-6)

    # without truncation the gradient reaches past the window (it fades further back: vanishing gradients)
    x.grad = None
    model.body.tbptt_window = None
    model.body(x, mask).sum().backward()
    assert (x.grad[0, 200:250].abs().sum(-1) > 0).all()


def test_tbptt_bidirectional_truncates_both_directions() -> None:
    model = TrackRNN(hidden=8, embed=0, bidirectional=True, cell="lstm", seed=5).train()
    tracks, mask = random_tracks([300], 300, seed=6)
    x = tracks.clone().requires_grad_(True)
    model.body(x, mask, window=40).sum().backward()
    touched = x.grad.abs().sum(-1)[0] > 0
    # forward stack: last window [280, 300); backward stack (reversed order): first 20 tracks
    assert touched[:20].all() and touched[280:].all()
    assert not touched[20:280].any()


def test_tbptt_setting_trains_through_the_engine() -> None:
    rng = np.random.default_rng(0)
    n, length = 96, 300
    label = rng.integers(0, 2, n)
    counts = np.where(label == 1, rng.integers(150, 300, n), rng.integers(20, 200, n))
    mask = np.arange(length)[None, :] < counts[:, None]
    tracks = (rng.normal(size=(n, length, 6)) + 0.5 * label[:, None, None]).astype(np.float32) * mask[..., None]
    data = ArrayDataset({"tracks": tracks, "track_mask": mask, "label": label})
    model = TrackRNN(hidden=8, embed=8, bidirectional=False, seed=0)
    settings = TrainSettings(model=model.config, epochs=1, batch_size=32, device="cpu", progress="never",
                             log_epochs=False, tbptt_window=64)
    result = train(model, data, data, settings)
    assert model.body.tbptt_window == 64
    assert np.isfinite(result.history[0]["train_loss"])
    # standardisation comes from the real tracks only (padding zeros would pull the mean to 0)
    real_mean = tracks[mask].mean(axis=0)
    torch.testing.assert_close(model.body.standardise.mean, torch.as_tensor(real_mean), rtol=1e-4, atol=1e-4)

    with pytest.raises(ConfigError, match="tbptt_window"):
        TrainSettings(tbptt_window=0)
    with pytest.raises(ConfigError, match="no recurrent part"):
        set_tbptt_window(build_model({"name": "jet_cnn", "channels": [4]}), 10)


@pytest.mark.parametrize(("cell", "bidirectional", "layers"),
                         [("gru", False, 1), ("gru", True, 2), ("lstm", False, 2), ("lstm", True, 1)])
def test_variants_build_and_backpropagate(cell: str, bidirectional: bool, layers: int) -> None:
    config = {"name": "track_rnn", "cell": cell, "bidirectional": bidirectional, "layers": layers,
              "hidden": 12, "embed": 0, "dropout": 0.2, "n_outputs": 3}
    model = build_model(config)
    assert model.body.out_dim == 12 * (2 if bidirectional else 1)
    tracks, mask = random_tracks([4, 0, 9, 1], 10)
    out = model(tracks, mask)
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.body.forward_rnn.parameters())
    # the same config builds the same weights (seeded initialisation)
    again = build_model(config)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cell"):
        build_model({"name": "track_rnn", "cell": "rnn"})
    with pytest.raises(ConfigError, match="rnn.size"):
        build_model({"name": "combined_tagger", "rnn": {"size": 3}})


def test_combined_tagger_learns_from_both_inputs() -> None:
    model = CombinedTagger(in_channels=2, cnn={"channels": [4, 8]}, rnn={"hidden": 8, "embed": 8}, head=[16], seed=1)
    assert model.body_dim == 8 + 16
    images = torch.rand(6, 2, 16, 16)
    tracks, mask = random_tracks([0, 3, 10, 10, 1, 7], 10)
    out = model(images, tracks, mask)
    assert out.shape == (6,)
    out.sum().backward()
    assert model.body.image[0][0].weight.grad.abs().sum() > 0
    assert model.body.tracks.forward_rnn.weight_ih_l0.grad.abs().sum() > 0
    model.eval()
    # each input changes the output
    ref = model(images, tracks, mask)
    assert not torch.allclose(model(images.flip(-1), tracks, mask), ref)
    assert not torch.allclose(model(images, tracks * 2, mask), ref)


def test_combined_tagger_trains_with_the_engine() -> None:
    # signal: a bright image pixel AND many tracks; each input alone separates half of it
    rng = np.random.default_rng(2)
    n = 256
    label = rng.integers(0, 2, n)
    kind = rng.integers(0, 2, n)  # which input carries the signal's evidence
    images = rng.random((n, 1, 8, 8)).astype(np.float32) * 0.1
    images[:, 0, 4, 4] += np.where((label == 1) & (kind == 0), 1.0, 0.0)
    counts = np.where((label == 1) & (kind == 1), 12, rng.integers(1, 6, n))
    mask = np.arange(12)[None, :] < counts[:, None]
    tracks = rng.normal(size=(n, 12, 6)).astype(np.float32) * mask[..., None]
    data = ArrayDataset({"jet_images": images, "tracks": tracks, "track_mask": mask, "label": label})
    model = CombinedTagger(in_channels=1, cnn={"channels": [8], "norm": "none"}, rnn={"hidden": 8, "embed": 8},
                           head=[16], dropout=0.0, seed=0)
    settings = TrainSettings(model=model.config, epochs=12, batch_size=32, learning_rate=0.01, device="cpu",
                             progress="never", log_epochs=False, early_stopping_patience=None)
    result = train(model, data, data, settings)
    assert result.history[-1]["val_auc"] > 0.9


def test_model_file_round_trip(tmp_path) -> None:
    tracks, mask = random_tracks([0, 2, 8, 8], 8, seed=9)
    images = torch.rand(4, 3, 12, 12)
    for model, inputs in ((TrackRNN(cell="lstm", hidden=8, layers=2, seed=4), ["tracks", "track_mask"]),
                          (CombinedTagger(cnn={"channels": [4, 4]}, rnn={"hidden": 8}, seed=4),
                           ["jet_images", "tracks", "track_mask"])):
        model.fit_standardisation(tracks.numpy() * 3 + 1, mask.numpy())
        model.eval()
        args = (images, tracks, mask) if len(inputs) == 3 else (tracks, mask)
        path = tmp_path / f"{model.config['name']}.pt"
        save_model(path, model, architecture=model.config, representation={}, inputs=inputs, task="jets",
                   classes=["background", "signal"], provenance={})
        loaded, info = load_model_file(path)
        assert info["inputs"] == inputs and info["architecture"] == model.config
        assert torch.equal(loaded(*args), model(*args))


def test_cli_fills_the_inputs_shapes_from_the_data() -> None:
    meta = {"arrays": {"jet_images": {"shape": [10, 2, 16, 16]}, "tracks": {"shape": [10, 20, 5]},
                       "track_mask": {"shape": [10, 20]}, "label": {"shape": [10]}}}
    cfg = complete_model_config({"name": "combined_tagger"}, meta, 2, "shard")
    assert (cfg["in_channels"], cfg["n_track_features"], cfg["n_outputs"]) == (2, 5, 1)
    assert complete_model_config({"name": "track_rnn"}, meta, 4, "shard")["n_features"] == 5
    del meta["arrays"]["track_mask"]
    with pytest.raises(ConfigError, match="track_mask"):
        complete_model_config({"name": "track_rnn"}, meta, 2, "shard")
