"""The fitted network: :class:`Network`, built once by ``fit``.

Everything after fit (prediction, the memory guard, the PyTorch export)
reads the estimator's ``_network``, never the current parameters, which
``set_params`` may have changed since.
"""

import dataclasses
import functools

import numpy as np

from . import _cells
from ._params import make_layout, penalty_mask


@dataclasses.dataclass(frozen=True)
class Network:
    """The shape of a network and the input transform it was fitted with.

    Attributes
    ----------
    cell : str
        A key of :data:`sklearn_gatedmem._cells.CELLS`.
    hidden : tuple of int
        Hidden units of each stacked recurrent layer.
    n_directions : {1, 2}
        2 for bidirectional layers.
    pooling : {"last", "mean", "max"}
        What the head reads of the last layer (see :mod:`._objective`).
    patch_size : int
        Steps of the raw sequences per step of the network (1: none).
    differences : bool
        Whether the network also reads each feature's first difference.
    n_features : int
        Inputs per step of the network, ``patch_size * raw features *
        widen``.
    n_outputs : int
        Width of the head.
    out_activation : {"identity", "logistic", "softmax"} or None
        The head's output activation, which fixes the loss (None before the
        targets are known: the memory guard's network).
    instance_norm : {"append", "replace"} or None
        How the network reads each sequence's z-normalised features
        (:func:`sklearn_gatedmem.make_patches`).
    missing : {"error", "carry"}
        "carry": gaps inside the sequences are filled by the last observed
        value, and an indicator channel per raw feature is read beside
        (:func:`sklearn_gatedmem._input.carry_forward`), before everything
        else.
    x_mean, x_scale : ndarray of shape (n_features,) or None
        The standardisation of each input, applied chunk by chunk.
    n_static : int
        Static values per case, read by the head beside the pooled state
        (``head.W_static``), standardised by ``s_mean`` and ``s_scale``.
    s_mean, s_scale : ndarray of shape (n_static,) or None
        Their standardisation.
    static_into : {"head", "initial_state", "both"}
        Where the static values enter (:func:`make_layout`): the head, the
        first layer's initial states, or both (the estimators' parameter).
    patch_shifts : int
        Readings of each sequence, the patch grid started
        :func:`~sklearn_gatedmem._input.shift_offsets` steps later; the
        network is fitted on all of them and a prediction averages its
        outputs over them (1: the sequence as it is).
    gap_fill : ndarray of shape (n_raw_features,) or None
        With ``missing="carry"``, the value of a gap before any observation:
        each raw feature's training mean.
    activation : str or None
        The activation method of the time loop (a key of
        ``_cells.ACTIVATIONS``); None: the one measured for the compute dtype
        in this process (:func:`~sklearn_gatedmem._cells.activation_method`).
    """

    cell: str
    hidden: tuple
    n_directions: int
    pooling: str
    patch_size: int
    differences: bool
    n_features: int
    n_outputs: int
    out_activation: str = None
    instance_norm: str = None
    missing: str = "error"
    n_static: int = 0
    static_into: str = "head"
    patch_shifts: int = 1
    x_mean: np.ndarray = dataclasses.field(default=None, compare=False, repr=False)
    x_scale: np.ndarray = dataclasses.field(default=None, compare=False, repr=False)
    gap_fill: np.ndarray = dataclasses.field(default=None, compare=False, repr=False)
    s_mean: np.ndarray = dataclasses.field(default=None, compare=False, repr=False)
    s_scale: np.ndarray = dataclasses.field(default=None, compare=False, repr=False)
    activation: str = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def cell_spec(self):
        """The :class:`~sklearn_gatedmem._cells.Cell` object."""
        return _cells.get(self.cell)

    @functools.cached_property
    def layout(self):
        """Where every parameter lives in the flat vector (:func:`make_layout`)."""
        return make_layout(
            self.cell, self.n_features, self.hidden, self.n_outputs, self.n_directions,
            self.n_static, self.static_into,
        )

    @functools.cached_property
    def mask(self):
        """:func:`penalty_mask` of the layout."""
        return penalty_mask(self.layout)

    @property
    def widen(self):
        """Values per raw feature of a step that the network reads
        (:func:`widen`)."""
        return widen(self.differences, self.instance_norm, self.missing)

    def input_shape(self, n_steps, n_features):
        """Steps and inputs per step that the network reads of raw sequences
        of ``n_steps`` steps of ``n_features`` features."""
        p = self.patch_size
        return -(-n_steps // p), n_features * p * self.widen


def widen(differences, instance_norm, missing="error"):
    """Values per raw feature of a step that the network reads: 2 with
    differences, times 2 with ``instance_norm="append"``, times 2 with
    ``missing="carry"`` (the indicator channels)."""
    return (
        (1 + bool(differences)) * (2 if instance_norm == "append" else 1)
        * (2 if missing == "carry" else 1)
    )
