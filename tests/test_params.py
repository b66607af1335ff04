"""The flat parameter layout: contiguity, views, pack, penalty mask,
initialisation. The layouts are built for every registered cell."""

import numpy as np
import pytest

from conftest import CELL_NAMES
from sklearn_gatedmem import _cells, _params

SHAPES = [(3, (4,), 1, 1), (2, (5, 3), 4, 1), (1, (3, 6), 3, 1), (2, (4, 3), 2, 2)]
CASES = [(cell,) + shape for cell in CELL_NAMES for shape in SHAPES]


def _layout(case):
    cell, n_inputs, hidden, n_outputs, n_directions = case
    return _params.make_layout(cell, n_inputs, hidden, n_outputs, n_directions)


@pytest.mark.parametrize("case", CASES)
def test_layout_is_contiguous_without_overlap(case):
    cell, n_inputs, hidden, n_outputs, n_directions = case
    layout = _layout(case)
    position = 0
    for name, (start, stop, shape) in layout.items():
        assert start == position, name
        assert stop - start == int(np.prod(shape)) > 0, name
        position = stop
    assert _params.n_params(layout) == position

    # shapes as documented in the module docstring
    width = n_inputs
    expected_names = []
    spec = _cells.get(cell)
    for layer, H in enumerate(hidden):
        for d in range(n_directions):
            assert layout[f"W{layer}.{d}"][2] == (width, len(spec.W_blocks) * H)
            assert layout[f"U{layer}.{d}"][2] == (H, len(spec.U_blocks) * H)
            assert layout[f"b{layer}.{d}"][2] == (len(spec.b_blocks) * H,)
            expected_names += [f"W{layer}.{d}", f"U{layer}.{d}", f"b{layer}.{d}"]
        width = n_directions * H
    assert layout["head.W"][2] == (width, n_outputs)
    assert layout["head.b"][2] == (n_outputs,)
    assert list(layout) == expected_names + ["head.W", "head.b"]


@pytest.mark.parametrize("case", CASES)
def test_unpack_returns_views(case):
    layout = _layout(case)
    theta = np.arange(_params.n_params(layout), dtype=np.float64)
    params = _params.unpack(theta, layout)
    assert set(params) == set(layout)
    for name, array in params.items():
        start, stop, shape = layout[name]
        assert array.shape == shape
        assert np.shares_memory(array, theta)
        np.testing.assert_array_equal(array.ravel(), np.arange(start, stop))
    # writing through every view fills the whole vector, and nothing twice
    theta[:] = 0
    for array in params.values():
        array += 1
    np.testing.assert_array_equal(theta, np.ones_like(theta))


@pytest.mark.parametrize("case", CASES)
def test_pack_inverts_unpack(case):
    layout = _layout(case)
    theta = np.random.RandomState(0).normal(size=_params.n_params(layout))
    packed = _params.pack(_params.unpack(theta, layout), layout)
    assert packed.tobytes() == theta.tobytes() and not np.shares_memory(packed, theta)


def test_layout_of_absurd_sizes_does_not_wrap_around():
    """Python ints (``math.prod``): ``np.prod((2**40, 4 * 2**40))`` wraps to 0."""
    layout = _params.make_layout("lstm", 1, (2**40,), 1)
    assert _params.n_params(layout) > 2**80


@pytest.mark.parametrize("case", CASES)
def test_penalty_mask_is_one_on_weights_zero_on_biases(case):
    layout = _layout(case)
    mask = _params.penalty_mask(layout)
    assert mask.shape == (_params.n_params(layout),)
    for name, array in _params.unpack(mask, layout).items():
        expected = 0.0 if name.startswith("b") or name == "head.b" else 1.0
        np.testing.assert_array_equal(array, expected, err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_initialize_is_reproducible_and_depends_on_shapes_only(case):
    cell = case[0]
    layout = _layout(case)
    a = _params.initialize(layout, cell, np.random.RandomState(7))
    b = _params.initialize(layout, cell, np.random.RandomState(7))
    assert a.dtype == np.float64 and a.shape == (_params.n_params(layout),)
    assert a.tobytes() == b.tobytes()
    # a layout rebuilt from the same shapes (a copy, not the same object)
    rebuilt = {k: (s, e, tuple(sh)) for k, (s, e, sh) in dict(layout).items()}
    assert _params.initialize(rebuilt, cell, np.random.RandomState(7)).tobytes() == a.tobytes()
    c = _params.initialize(layout, cell, np.random.RandomState(8))
    assert not np.array_equal(a, c)
    assert np.all(np.isfinite(a))


@pytest.mark.parametrize("case", CASES)
def test_initial_values(case):
    cell = case[0]
    layout = _layout(case)
    params = _params.unpack(_params.initialize(layout, cell, np.random.RandomState(0)), layout)
    spec = _cells.get(cell)
    for name, array in params.items():
        if name.startswith("U"):
            H = array.shape[0]
            assert array.shape[1] % H == 0
            for k in range(array.shape[1] // H):
                block = array[:, k * H : (k + 1) * H]
                np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
                np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
        elif name.startswith("b"):
            H = array.shape[0] // len(spec.b_blocks)
            expected = np.zeros(array.shape)
            for block, value in spec.bias_init.items():
                expected[spec.block("b", block, H)] = value
            np.testing.assert_array_equal(array, expected, err_msg=name)
        elif name == "head.b":
            np.testing.assert_array_equal(array, 0.0)
        else:  # Glorot uniform
            fan_in, fan_out = array.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            assert np.all(np.abs(array) <= limit), name
            assert np.std(array) > 0, name


@pytest.mark.parametrize("cell, block", [("lstm", 1), ("gated_memory", 2)])
def test_forget_block(cell, block):
    assert _cells.get(cell).bias_init == {"f": 1.0}
    layout = _params.make_layout(cell, 2, (3,), 1)
    b = _params.unpack(_params.initialize(layout, cell, np.random.RandomState(0)), layout)["b0.0"]
    np.testing.assert_array_equal(b.reshape(4, 3).sum(axis=1), np.eye(4)[block] * 3)


def test_recurrent_blocks_of_different_gates_differ():
    layout = _params.make_layout("lstm", 2, (4,), 1)
    theta = _params.initialize(layout, "lstm", np.random.RandomState(0))
    U = _params.unpack(theta, layout)["U0.0"]
    blocks = [U[:, k * 4 : (k + 1) * 4] for k in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(blocks[i], blocks[j])
