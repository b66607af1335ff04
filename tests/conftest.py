"""Shared fixtures and data: the cell list (from the registry, so that a new
cell is covered by every test that takes ``cell``), the activation methods,
and the small sequences most tests fit."""

import os
import signal

import numpy as np
import pytest

from sklearn_gatedmem import _cells

# Every cell of the registry, in its order.
CELL_NAMES = list(_cells.CELLS)


@pytest.fixture(params=CELL_NAMES)
def cell(request):
    """Run the test with each registered cell."""
    return request.param


@pytest.fixture(params=sorted(_cells.ACTIVATIONS))
def method(request):
    """Run the test with each activation method forced, whatever this
    machine would choose (see ``_cells.activation_method``)."""
    previous = _cells._force_activation(request.param)
    yield request.param
    _cells._force_activation(previous)


@pytest.fixture
def ctrl_c():
    """A function that interrupts this process as Ctrl-C does (SIGINT), with
    Python's own Ctrl-C handler installed for the test, whatever an earlier
    test or library left (in the full suite's process a test once saw no
    interrupt)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield lambda: os.kill(os.getpid(), signal.SIGINT)
    signal.signal(signal.SIGINT, previous)


def sequences(n_samples=40, n_steps=6, n_features=2, seed=0, dtype=np.float64):
    """Gaussian sequences, a binary target that the first two steps decide,
    and a regression target, the running sum of feature 0.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, n_features)
    y_class : ndarray of shape (n_samples,), int
    y_reg : ndarray of shape (n_samples,), float64
    """
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_steps, n_features)).astype(dtype)
    y_class = (X[:, 0, 0] + 0.5 * X[:, min(1, n_steps - 1), -1] > 0).astype(int)
    return X, y_class, X[:, :, 0].sum(axis=1).astype(np.float64)
