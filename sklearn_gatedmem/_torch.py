"""A fitted estimator as a ``torch.nn.Module``: :func:`to_torch`.

The module takes raw input, as ``predict`` does, and returns the head's
outputs: probabilities for a classifier, values in original units for a
regressor. Everything the NumPy path does on the way is built in, in this
order:

1. layout: a 2-D batch ``(n_samples, n_features_in_)`` is split into steps
   step-major, as in fit; a 3-D batch is read channels-first when the
   estimator was (``data_format="channels_first"``);
2. lengths: with ``variable_length=True``, trailing all-NaN steps are padding;
   with ``missing="carry"``, gaps inside the real steps are filled by the
   last observed value (the training mean before the first), and one
   indicator channel per feature is appended (1 where imputed); with
   ``patch_shifts_ = K > 1``, steps 3 to 6 run on each of the K readings of
   the sequences (the first ``shift_offsets(patch_size_, K)[k]`` steps
   dropped) and their outputs are averaged, as ``predict`` does;
3. with ``instance_norm_``, each sequence's features z-normalised over its
   real steps, appended ("append") or in place of the raw ones ("replace");
   with ``differences_``, each feature's first difference appended to every
   step (0 at the first); then patching (``patch_size_ = p > 1``): steps are grouped ``p`` at a time,
   step-major, a sequence's last partial patch completed with its last real
   step; a sequence of ``L`` real steps has ``ceil(L / p)`` patches;
4. clipping to ``x_mean_ +- 1e6 x_scale_`` and standardisation; padding to 0;
5. the stacked (optionally bidirectional) recurrent layers; the backward
   direction reads each sequence reversed within its own length;
6. pooling (``last``, ``mean``, ``max`` over real steps) and the dense head,
   with the static values (``static_features``) clipped, standardised and
   read beside the pooled state; then softmax / logistic, or the targets'
   standardisation undone.

With ``static_features``, ``forward(x, static=None)`` takes the static values
as a second input, ``static`` of shape (n_samples, n_static), and then ``x``
holds the sequences without them; with ``static=None`` it reads them from
``x`` as ``predict`` does (the columns of a 2-D batch, the first step of the
channels of a 3-D one; the constancy over each series is not checked here).

The cells are those of :data:`._cells.CELLS`: each cell's module holds its
equations and its PyTorch step (``torch_input``, ``torch_step``), named as
there, on the parameter layout of :mod:`._params`. Initial states are zero.

PyTorch is imported by this module only, and this module only by
``to_torch``: the package itself runs without PyTorch.
"""

import numpy as np

from . import _cells
from ._input import INPUT_CLIP, shift_offsets

try:
    import torch
    from torch import nn
except ImportError:  # to_torch says how to install it
    torch = None

_INSTALL = (
    "to_torch() needs PyTorch, which is not installed. Install it with "
    "`pip install torch` (a CPU build is enough), or use torch_state_dict(), "
    "which returns NumPy arrays."
)


def _require_torch():
    if torch is None:
        raise ImportError(_INSTALL)


class _Base(nn.Module if torch is not None else object):
    pass


class RecurrentLayer(_Base):
    """One direction of one recurrent layer: parameters ``W``, ``U``, ``b``
    exactly as in the estimator's ``coefs_`` (standardised inputs)."""

    def __init__(self, cell, W, U, b):
        super().__init__()
        self.cell = cell
        self.n_hidden = U.shape[0]
        self.W = nn.Parameter(torch.from_numpy(np.array(W, dtype=np.float64)))
        self.U = nn.Parameter(torch.from_numpy(np.array(U, dtype=np.float64)))
        self.b = nn.Parameter(torch.from_numpy(np.array(b, dtype=np.float64)))

    def forward(self, x, initial=None):
        """Outputs at every step, shape (n, T, H), of ``x`` of shape (n, T, n_inputs),
        from the states ``initial`` (a tuple of (n, H) tensors) or zero."""
        cell = _cells.get(self.cell)
        xw = cell.torch_input(x, self.W, self.b)  # every step's input part at once
        if initial is None:
            zeros = x.new_zeros((x.shape[0], self.n_hidden))
            initial = (zeros,) * cell.n_states
        state = tuple(initial)
        outs = []
        for t in range(x.shape[1]):
            out, state = cell.torch_step(xw[:, t], state, self.U, self.b, self.n_hidden)
            outs.append(out)
        return torch.stack(outs, dim=1)


class SequenceNetwork(_Base):
    """The network of a fitted ``LSTMClassifier`` or ``LSTMRegressor``.

    Built by :meth:`~sklearn_gatedmem.LSTMClassifier.to_torch`; see the
    module docstring for what ``forward`` does.
    """

    def __init__(self, config, coefs, stats):
        super().__init__()
        for key, value in config.items():
            setattr(self, key, value)
        for name, value in stats.items():
            self.register_buffer(name, torch.from_numpy(np.array(value, dtype=np.float64)))
        self.layers = nn.ModuleList(
            nn.ModuleList(
                RecurrentLayer(
                    self.cell, coefs[f"W{layer}.{d}"], coefs[f"U{layer}.{d}"],
                    coefs[f"b{layer}.{d}"],
                )
                for d in range(self.n_directions)
            )
            for layer in range(self.n_layers)
        )
        self.head_W = nn.Parameter(torch.from_numpy(np.array(coefs["head.W"], dtype=np.float64)))
        self.head_b = nn.Parameter(torch.from_numpy(np.array(coefs["head.b"], dtype=np.float64)))
        if "head.W_static" in coefs:
            self.head_W_static = nn.Parameter(
                torch.from_numpy(np.array(coefs["head.W_static"], dtype=np.float64))
            )
        if "h0.W" in coefs:  # static_into: the first layer's initial states
            self.h0_W = nn.Parameter(torch.from_numpy(np.array(coefs["h0.W"], dtype=np.float64)))
            self.h0_b = nn.Parameter(torch.from_numpy(np.array(coefs["h0.b"], dtype=np.float64)))
        if self.n_static:
            self.register_buffer("static_index", torch.as_tensor(self.static_columns))
            self.register_buffer("sequence_index", torch.as_tensor(self.sequence_columns))

    def forward(self, x, static=None):
        """Probabilities (classifier) or predictions (regressor) of a raw batch.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_steps, n_features) or (n_samples, n_features_in_)
            Float, in the layout of fit: 3-D as ``data_format`` says (any
            number of steps with ``variable_length``, NaN-padded at the end),
            or 2-D as in fit. Without the static columns or channels when
            ``static`` is given.
        static : Tensor of shape (n_samples, n_static), default=None
            The static values, raw, in the order of ``static_features_``
            (only with ``static_features``); None reads them from ``x``.

        Returns
        -------
        out : Tensor of shape (n_samples, n_classes), (n_samples, n_outputs) or (n_samples,)
            What ``predict_proba`` (classifier) or ``predict`` (regressor) returns.
        """
        x = x.to(self.x_mean.dtype)
        take = self.n_static and static is None  # the static values are in x
        if x.dim() == 2:
            if take:
                static, x = x[:, self.static_index], x[:, self.sequence_index]
            x = x.reshape(x.shape[0], self.n_steps_2d, self.n_features)
        else:
            if self.channels_first:
                x = x.transpose(1, 2)
            if take:
                static = x[:, 0, self.static_index]
                x = x[:, :, self.sequence_index]
        n_samples, n_steps = x.shape[0], x.shape[1]
        if self.variable_length:  # trailing all-NaN steps are padding
            pad = torch.isnan(x).all(dim=2)
            lengths = n_steps - pad.flip(1).long().cumprod(dim=1).sum(dim=1)
        else:
            lengths = torch.full((n_samples,), n_steps, dtype=torch.long, device=x.device)
        if self.missing == "carry":
            x = self._carry(x, lengths)
        # each reading of the sequences (patch_shifts_), their outputs averaged
        return torch.stack([
            self._read(*self._shifted(x, lengths, offset), static)
            for offset in self.offsets
        ]).mean(dim=0)

    def _read(self, x, lengths, static):
        """The output of one reading of the sequences ``x`` (their real steps
        ``lengths``): steps 3 to 6 of the module docstring."""
        if self.instance_norm is not None:
            x = self._instance_norm(x)
        if self.differences:
            d = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
            x = torch.cat([x, d], dim=2)
        if self.patch_size > 1:
            x, lengths = self._patches(x, lengths)
        steps = torch.arange(x.shape[1], device=x.device)
        real = steps[None, :] < lengths[:, None]  # (n, T)
        x = torch.minimum(torch.maximum(x, self.x_lo), self.x_hi)
        x = torch.where(real[:, :, None], (x - self.x_mean) / self.x_scale, 0.0)
        # time index reversing each sequence within its length (an involution)
        rev = torch.where(real, lengths[:, None] - 1 - steps[None, :], steps[None, :])
        s = None
        if self.n_static:
            s = torch.minimum(torch.maximum(static.to(x.dtype), self.s_lo), self.s_hi)
            s = (s - self.s_mean) / self.s_scale
        initial = self._initial_states(s)
        for k, directions in enumerate(self.layers):
            outs = []
            for d, layer in enumerate(directions):
                start = initial[d] if initial is not None and k == 0 else None
                if d == 0:
                    outs.append(layer(x, start))
                else:
                    outs.append(_take_steps(layer(_take_steps(x, rev), start), rev))
            x = torch.cat(outs, dim=2)  # natural time order, as the next layer reads
        r = self._pool(x, lengths, real)
        z = r @ self.head_W + self.head_b
        if s is not None and hasattr(self, "head_W_static"):
            z = z + s @ self.head_W_static
        return self._output(z)

    def _shifted(self, x, lengths, offset):
        """The sequences with their first ``offset`` steps dropped (at most
        all but the last real one), NaN-padded at the end, as
        :func:`sklearn_gatedmem._input.shift_sequences` does."""
        if offset == 0:
            return x, lengths
        drop = torch.clamp(lengths - 1, max=offset)
        steps = torch.arange(x.shape[1], device=x.device)
        source = torch.clamp(steps[None, :] + drop[:, None], max=x.shape[1] - 1)
        x = _take_steps(x, source)
        lengths = lengths - drop
        return torch.where((steps[None, :] < lengths[:, None])[:, :, None], x, torch.nan), lengths

    def _initial_states(self, s):
        """Per direction, the first layer's initial states ``tanh(s W_h0 +
        b_h0)`` (standardised static values ``s``), or None: zero."""
        if s is None or not hasattr(self, "h0_W"):
            return None
        T = torch.tanh(s @ self.h0_W + self.h0_b)
        k = _cells.get(self.cell).n_states
        blocks = torch.chunk(T, self.n_directions * k, dim=1)
        return [blocks[d * k : (d + 1) * k] for d in range(self.n_directions)]

    def _carry(self, x, lengths):
        """Gaps filled by the last observed value (``gap_fill`` before the
        first), with indicator channels, as
        :func:`sklearn_gatedmem._input.carry_forward` does."""
        steps = torch.arange(x.shape[1], device=x.device)
        observed = ~torch.isnan(x)
        last = torch.where(observed, steps[None, :, None], -1)
        last = torch.cummax(last, dim=1).values
        values = torch.gather(x, 1, last.clamp(min=0))
        values = torch.where(last >= 0, values, self.gap_fill)
        out = torch.cat([values, (~observed).to(x.dtype)], dim=2)
        real = steps[None, :] < lengths[:, None]
        return torch.where(real[:, :, None], out, torch.nan)

    def _instance_norm(self, x):
        """Each sequence's features z-normalised over its real (non-NaN)
        steps, as :func:`sklearn_gatedmem.make_patches` does."""
        real = ~torch.isnan(x)
        count = real.sum(dim=1, keepdim=True).clamp(min=1)
        x0 = torch.where(real, x, 0.0)
        size = x0.abs().amax(dim=1, keepdim=True)  # scaled first, as there
        x0 = x0 / torch.where(size > 0, size, 1.0)
        mean = x0.sum(dim=1, keepdim=True) / count
        dev = torch.where(real, x0 - mean, 0.0)
        std = torch.sqrt((dev * dev).sum(dim=1, keepdim=True) / count)
        constant = std <= float(np.sqrt(np.finfo(np.float64).eps))
        z = torch.where(real, dev / torch.where(constant, 1.0, std), torch.nan)
        return z if self.instance_norm == "replace" else torch.cat([x, z], dim=2)

    def _patches(self, x, lengths):
        """Patches of ``patch_size`` steps, step-major; the last partial patch
        of each sequence completed by repeating its last real step."""
        p = self.patch_size
        n_patches = -(-x.shape[1] // p)
        t = torch.arange(n_patches * p, device=x.device)
        source = torch.minimum(t[None, :], lengths[:, None] - 1)  # edge value
        x = _take_steps(x, source)
        x = x.reshape(x.shape[0], n_patches, p * x.shape[2])
        return x, torch.div(lengths + p - 1, p, rounding_mode="floor")

    def _pool(self, out, lengths, real):
        """What the head reads of the last layer's outputs (n, T, D * H)."""
        H = out.shape[2] // self.n_directions
        if self.pooling == "last":
            samples = torch.arange(out.shape[0], device=out.device)
            last = out[samples, lengths - 1]  # forwards: each sequence's last step
            if self.n_directions == 1:
                return last
            return torch.cat([last[:, :H], out[:, 0, H:]], dim=1)  # backwards: step 0
        mask = real[:, :, None]
        if self.pooling == "mean":
            return torch.where(mask, out, 0.0).sum(dim=1) / lengths[:, None].to(out.dtype)
        return torch.where(mask, out, -torch.inf).max(dim=1).values

    def _output(self, z):
        if self.output == "softmax":
            return torch.softmax(z, dim=1)
        if self.output == "binary":
            return torch.cat([torch.sigmoid(-z), torch.sigmoid(z)], dim=1)
        if self.output == "multilabel":
            eps = float(np.finfo(np.float64).eps)
            return torch.clamp(torch.sigmoid(z), eps, 1 - eps)
        y = z * self.y_scale + self.y_mean
        return y[:, 0] if self.squeeze else y


class EnsembleNetwork(_Base):
    """The networks of a fitted ensemble (``n_ensemble > 1``), each a
    :class:`SequenceNetwork`; ``forward`` averages their outputs, as the
    estimator averages probabilities (classifier) or values (regressor)."""

    def __init__(self, networks):
        super().__init__()
        self.networks = nn.ModuleList(networks)

    def forward(self, x, static=None):
        """The mean of the networks' outputs of a raw batch ``x`` (and of the
        static values, as :meth:`SequenceNetwork.forward` takes them)."""
        return torch.stack([network(x, static) for network in self.networks]).mean(dim=0)


def _take_steps(x, index):
    """``x[n, index[n, t]]`` for x of shape (n, T, width) and index (n, T')."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def to_torch(estimator):
    """The fitted ``estimator`` as a :class:`SequenceNetwork` (float64).

    Parameters
    ----------
    estimator : LSTMClassifier or LSTMRegressor
        Fitted.

    Returns
    -------
    module : torch.nn.Module
    """
    _require_torch()
    members = getattr(estimator, "estimators_", None)
    if members:
        return EnsembleNetwork([to_torch(member) for member in members])
    network = estimator._network
    p = network.patch_size
    mean = np.asarray(estimator.x_mean_, dtype=np.float64)
    scale = np.asarray(estimator.x_scale_, dtype=np.float64)
    differences, instance_norm = network.differences, network.instance_norm
    n_features = mean.shape[0] // (p * network.widen)  # raw features per step
    half = np.finfo(np.float64).max / 2
    stats = {
        "x_mean": mean,
        "x_scale": scale,
        "x_lo": np.maximum(mean - INPUT_CLIP * scale, -half),
        "x_hi": np.minimum(mean + INPUT_CLIP * scale, half),
    }
    if network.missing == "carry":
        stats["gap_fill"] = network.gap_fill
    static_columns = sequence_columns = None
    if network.n_static:
        s_mean, s_scale = network.s_mean, network.s_scale
        stats.update(
            s_mean=s_mean, s_scale=s_scale,
            s_lo=np.maximum(s_mean - INPUT_CLIP * s_scale, -half),
            s_hi=np.minimum(s_mean + INPUT_CLIP * s_scale, half),
        )
        index = estimator.static_features_
        width = (estimator.n_features_in_ if estimator._static_on == "columns"
                 else n_features + len(index))
        static_columns = [int(i) for i in index]
        sequence_columns = [int(i) for i in np.delete(np.arange(width), index)]
    n_outputs = estimator.n_outputs_
    if estimator.out_activation_ == "identity":
        output = "identity"
        stats["y_mean"], stats["y_scale"] = estimator.y_mean_, estimator.y_scale_
    elif estimator.out_activation_ == "softmax":
        output = "softmax"
    else:  # as predict_proba: one logistic output is a binary classifier
        output = "binary" if n_outputs == 1 else "multilabel"
    config = {
        "cell": network.cell,
        "n_layers": len(network.hidden),
        "n_directions": network.n_directions,
        "pooling": network.pooling,
        "variable_length": bool(estimator.variable_length),
        "channels_first": getattr(estimator, "data_format", "channels_last")
        == "channels_first",
        "patch_size": p,
        "offsets": shift_offsets(p, network.patch_shifts),
        "differences": differences,
        "instance_norm": instance_norm,
        "missing": network.missing,
        "n_features": n_features,
        "n_steps_2d": estimator.n_steps_ if estimator._static_on == "columns"
        else estimator.n_features_in_ // n_features,
        "n_static": network.n_static,
        "static_columns": static_columns,
        "sequence_columns": sequence_columns,
        "output": output,
        "squeeze": output == "identity" and getattr(estimator, "_y_ndim", 2) == 1,
    }
    return SequenceNetwork(config, estimator.coefs_, stats)
