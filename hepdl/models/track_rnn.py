"""A recurrent network (GRU or LSTM) over a jet's tracks, sorted by pT and padded with a mask.

``body`` (:class:`TrackEncoder`) turns ``tracks (N, L, F)`` and ``track_mask (N, L)`` into
one vector per jet: the last hidden state after the jet's last real track (and, if
bidirectional, a second recurrent stack run over the tracks in reverse order, ending on the
leading track). Padding never reaches the result: real tracks are moved to the front,
sequences are packed to their true lengths, and a jet without tracks gets a learned
"no track" vector instead of a recurrent state. ``head`` is a dense network to the logits.

Truncated back-propagation through time: with ``tbptt_window = k`` (the training setting
of the same name sets it) the encoder, in training mode, runs the sequence in windows of
``k`` tracks and carries the hidden state from one window into the next without gradient,
so the gradient of a jet's output reaches back at most to the start of the window holding
its last track. In evaluation mode the sequence runs whole: the windows change the
gradient, never the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hepdl.models.expert_mlp import Standardise
from hepdl.models.init import initialise_weights
from hepdl.models.interface import ModelBase
from hepdl.models.jet_cnn import dense_head
from hepdl.models.registry import register_model

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _select(state: State, idx: torch.Tensor) -> State:
    """The states of jets ``idx`` (the batch axis of an RNN state is 1)."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, idx) for s in state)
    return state.index_select(1, idx)


def _scatter(state: State, idx: torch.Tensor, new: State) -> State:
    if isinstance(state, tuple):
        return tuple(s.index_copy(1, idx, n.to(s.dtype)) for s, n in zip(state, new, strict=True))
    return state.index_copy(1, idx, new.to(state.dtype))


def _top_hidden(state: State) -> torch.Tensor:
    """Hidden state of the last layer (for an LSTM, h and not the cell state c)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


@torch.no_grad()
def _initialise_recurrent(rnn: nn.RNNBase, generator: torch.Generator) -> None:
    # Orthogonal recurrent matrices keep the state's norm over long sequences; Xavier for
    # the input matrices; a forget-gate bias of 1 lets an LSTM remember by default.
    n_gates = {nn.GRU: 3, nn.LSTM: 4}[type(rnn)]
    for name, param in rnn.named_parameters():
        if name.startswith("bias"):
            param.zero_()
            if isinstance(rnn, nn.LSTM):
                param[rnn.hidden_size : 2 * rnn.hidden_size] = 0.5  # 0.5 + 0.5 from the two biases
            continue
        for chunk in param.chunk(n_gates, dim=0):
            if name.startswith("weight_hh"):
                nn.init.orthogonal_(chunk, generator=generator)
            else:
                nn.init.xavier_uniform_(chunk, generator=generator)


class TrackEncoder(nn.Module):
    """Masked track sequence ``(N, L, F)``, ``(N, L)`` -> one feature vector ``(N, out_dim)`` per jet.

    Args:
        n_features: track features per track (``feature_names["tracks"]`` of the prepared data).
        cell: "gru" or "lstm".
        hidden: hidden size of each recurrent layer.
        layers: stacked recurrent layers.
        bidirectional: add a second stack over the tracks in reverse order.
        dropout: dropout between stacked recurrent layers.
        embed: width of a per-track dense layer (ReLU) before the recurrence; 0 for none.
        seed: initialisation seed.
    """

    def __init__(
        self, *, n_features: int, cell: str = "gru", hidden: int = 32, layers: int = 1,
        bidirectional: bool = True, dropout: float = 0.0, embed: int = 32, seed: int = 0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {cell!r}")
        for key, value in (("n_features", n_features), ("hidden", hidden), ("layers", layers)):
            if int(value) < 1:
                raise ValueError(f"{key} must be >= 1, not {value}")
        if embed < 0:
            raise ValueError(f"embed must be >= 0, not {embed}")
        self.standardise = Standardise(int(n_features))
        self.embed = nn.Sequential(nn.Linear(int(n_features), int(embed)), nn.ReLU()) if embed else nn.Identity()
        width = int(embed) if embed else int(n_features)
        rnn_dropout = float(dropout) if layers > 1 else 0.0  # torch warns on dropout with one layer

        def stack() -> nn.RNNBase:
            return CELLS[cell](width, int(hidden), num_layers=int(layers), batch_first=True, dropout=rnn_dropout)

        self.forward_rnn = stack()
        self.backward_rnn = stack() if bidirectional else None
        self.out_dim = int(hidden) * (2 if bidirectional else 1)
        # what a jet without tracks shows the head: learned, never a state computed from padding
        self.no_track = nn.Parameter(torch.zeros(self.out_dim))
        #: truncated-BPTT window (tracks) honoured in training mode; None: full back-propagation
        self.tbptt_window: int | None = None
        initialise_weights(self.embed, seed)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        for rnn in (self.forward_rnn, self.backward_rnn):
            if rnn is not None:
                _initialise_recurrent(rnn, gen)
        with torch.no_grad():
            # not zero: with zero biases a zero vector sits on every ReLU's kink and gets no gradient
            self.no_track.normal_(0.0, 0.1, generator=gen)

    @torch.no_grad()
    def fit_standardisation(self, tracks: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> None:
        """Per-feature mean and standard deviation over the real (unmasked) tracks of the training split."""
        x = np.asarray(tracks, dtype=np.float64)
        m = np.asarray(mask, dtype=bool)
        if x.ndim != 3 or x.shape[2] != self.standardise.mean.numel() or m.shape != x.shape[:2]:
            raise ValueError(f"tracks {x.shape} and track_mask {m.shape} do not fit (N, L, "
                             f"{self.standardise.mean.numel()}) and (N, L)")
        real = x[m]
        if len(real) == 0:
            return  # no track anywhere: keep the identity
        mean = real.mean(axis=0)
        std = real.std(axis=0)
        # a constant feature (e.g. charge when the input has none) would divide by zero
        std = np.where(std > 1e-12, std, 1.0)
        self.standardise.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.standardise.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def _run(self, rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, window: int | None) -> torch.Tensor:
        """Top-layer hidden state after each jet's last track; ``x`` holds real tracks first."""
        n, length, _ = x.shape
        step = int(window) if (window and self.training) else length
        zeros = x.new_zeros(rnn.num_layers, n, rnn.hidden_size)
        carry: State = (zeros, zeros.clone()) if isinstance(rnn, nn.LSTM) else zeros
        final = x.new_zeros(n, rnn.hidden_size)
        for start in range(0, length, step):
            stop = start + step
            ending = (lengths > start) & (lengths <= stop)
            continuing = lengths > stop
            if ending.any():
                # jets whose last track is in this window: the output, with gradient back to `start`
                idx = ending.nonzero().squeeze(1)
                seg_len = (lengths.index_select(0, idx) - start).cpu()
                packed = pack_padded_sequence(x.index_select(0, idx)[:, start:stop], seg_len,
                                              batch_first=True, enforce_sorted=False)
                _, state = rnn(packed, _select(carry, idx))
                # under autocast the recurrence may return a lower precision than the buffers
                final = final.index_copy(0, idx, _top_hidden(state).to(final.dtype))
            if continuing.any():
                # Only in truncated mode (step < length): the state enters the next window
                # without gradient. Running it under no_grad is the same as detaching it, and
                # keeps no graph, so memory grows with the window, not the sequence.
                idx = continuing.nonzero().squeeze(1)
                with torch.no_grad():
                    _, state = rnn(x.index_select(0, idx)[:, start:stop], _select(carry, idx))
                carry = _scatter(carry, idx, state)
            if not continuing.any():
                break
        return final

    @staticmethod
    def _run_whole(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Top-layer output at each jet's last real track; ``x`` holds real tracks first.

        The recurrence is causal, so the padding after a jet's last track never reaches
        this output: the same result as a packed sequence, without data-dependent shapes.
        """
        # an explicit zero state sized from the batch keeps an exported graph batch-size free
        h0 = x.new_zeros(rnn.num_layers, x.shape[0], rnn.hidden_size)
        out, _ = rnn(x, (h0, torch.zeros_like(h0)) if isinstance(rnn, nn.LSTM) else h0)
        last = (lengths.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1])
        return out.gather(1, last).squeeze(1)

    def forward(self, tracks: torch.Tensor, mask: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """``(N, out_dim)``; ``window`` (else ``self.tbptt_window``) truncates BPTT in training mode."""
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        # real tracks to the front, in their given (pT) order: the recurrence then never sees a
        # padding row, wherever the input put its padding. A cumulative-sum scatter rather than
        # a sort, so that the same code exports to ONNX.
        real_rank = torch.cumsum(mask.long(), dim=1) - 1
        pad_rank = lengths.unsqueeze(1) + torch.cumsum((~mask).long(), dim=1) - 1
        dest = torch.where(mask, real_rank, pad_rank)
        x = torch.zeros_like(tracks).scatter(1, dest.unsqueeze(-1).expand_as(tracks), tracks)
        real = torch.zeros_like(mask).scatter(1, dest, mask).unsqueeze(-1)
        window = self.tbptt_window if window is None else window
        packed = self.training and bool(window)
        if packed:  # truncated BPTT runs windows of packed sequences; the rest needs no packing
            longest = max(int(lengths.max()) if tracks.shape[0] else 0, 1)
            x, real = x[:, :longest], real[:, :longest]
        # where(), not a product: a NaN in a padding row must not become NaN * 0 = NaN
        x = torch.where(real, self.standardise(torch.where(real, x, 0.0)), 0.0)
        x = self.embed(x)
        run = (lambda rnn, seq: self._run(rnn, seq, lengths, window)) if packed else (
            lambda rnn, seq: self._run_whole(rnn, seq, lengths))
        parts = [run(self.forward_rnn, x)]
        if self.backward_rnn is not None:
            pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
            rev = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)
            x_rev = torch.gather(x, 1, rev.unsqueeze(-1).expand_as(x))
            parts.append(run(self.backward_rnn, x_rev))
        out = torch.cat(parts, dim=1)
        return torch.where((lengths > 0).unsqueeze(1), out, self.no_track.to(out.dtype))


@register_model("track_rnn")
class TrackRNN(ModelBase):
    """Recurrent tagger on ``tracks (N, L, F)`` and ``track_mask (N, L)``; returns logits ``(N,)`` or ``(N, K)``.

    Args:
        n_features: track features (from the prepared data).
        cell, hidden, layers, bidirectional, embed: see :class:`TrackEncoder`.
        dropout: dropout between recurrent layers and in the dense head.
        head: widths of the hidden dense layers.
        n_outputs: 1 for a binary classifier (one logit), K for K classes.
        seed: initialisation seed.

    Call :meth:`fit_standardisation` with the training split's tracks and mask before
    training (the engine does). Set ``tbptt_window`` for truncated BPTT (the training
    setting of that name does).
    """

    input_keys = ("tracks", "track_mask")
    standardisation_keys = ("tracks", "track_mask")

    def __init__(
        self,
        *,
        n_features: int = 6,
        cell: str = "gru",
        hidden: int = 32,
        layers: int = 1,
        bidirectional: bool = True,
        embed: int = 32,
        dropout: float = 0.1,
        head: Sequence[int] = (64,),
        n_outputs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.body = TrackEncoder(n_features=n_features, cell=cell, hidden=hidden, layers=layers,
                                 bidirectional=bidirectional, dropout=dropout, embed=embed, seed=seed)
        self.body_dim = self.body.out_dim
        self.head = dense_head(self.body_dim, head, n_outputs, dropout)
        self.n_outputs = int(n_outputs)
        initialise_weights(self.head, seed, output_layers=(self.head[-1],))

    @classmethod
    def config_from_data(cls, meta: Mapping[str, Any]) -> dict[str, Any]:
        """``n_features`` from a prepared dataset's meta (the ``tracks`` array's last axis)."""
        return {"n_features": int(meta["arrays"]["tracks"]["shape"][2])}

    def fit_standardisation(self, tracks: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> None:
        self.body.fit_standardisation(tracks, mask)

    def set_tbptt_window(self, window: int | None) -> None:
        self.body.tbptt_window = window

    def forward(self, tracks: torch.Tensor, track_mask: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(tracks, track_mask))
        return logits.squeeze(-1) if self.n_outputs == 1 else logits
