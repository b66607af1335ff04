"""Input shaping: 2-D step-major and 3-D layouts, canonical rows, standardisation."""

import numpy as np
import pytest

from sklearn_gatedmem._input import (
    canonical_rows,
    check_predict_layout,
    AUTO_PATCH_STEPS,
    flatten_3d,
    make_patches,
    pad_sequences,
    resolve_layout,
    resolve_patch_size,
    sequence_lengths,
    weighted_mean_scale,
)


def test_flatten_3d_is_the_c_order_flattening():
    X = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    flat, steps_features = flatten_3d(X)
    assert steps_features == (3, 4)
    np.testing.assert_array_equal(flat, X.reshape(2, 12))
    # step-major: X[i, t * d + j] is step t, feature j
    for t in range(3):
        for j in range(4):
            np.testing.assert_array_equal(flat[:, t * 4 + j], X[:, t, j])


def test_flatten_3d_of_fortran_and_list_input():
    X = np.random.RandomState(0).normal(size=(3, 4, 2))
    flat_f, sf = flatten_3d(np.asfortranarray(X))
    np.testing.assert_array_equal(flat_f, X.reshape(3, 8))
    assert sf == (4, 2)
    flat_l, sl = flatten_3d(X.tolist())
    np.testing.assert_array_equal(flat_l, X.reshape(3, 8))
    assert sl == (4, 2)


@pytest.mark.parametrize(
    "X", [np.zeros((3, 4)), [[1.0, 2.0], [3.0, 4.0]], np.zeros(5), [[1, 2], [3]]],
    ids=["2d", "list2d", "1d", "ragged"],
)
def test_flatten_3d_leaves_other_input_alone(X):
    out, steps_features = flatten_3d(X)
    assert out is X
    assert steps_features is None


def test_flatten_3d_leaves_sparse_and_dataframes_alone():
    sparse = pytest.importorskip("scipy.sparse")
    S = sparse.csr_matrix(np.eye(3))
    assert flatten_3d(S) == (S, None)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(np.eye(3), columns=list("abc"))
    out, sf = flatten_3d(df)
    assert out is df and sf is None


def test_2d_step_major_equals_3d():
    X3 = np.random.RandomState(0).normal(size=(5, 4, 3))
    X2 = X3.reshape(5, 12)
    assert resolve_layout(12, 4, None) == (4, 3)
    np.testing.assert_array_equal(X2.reshape(5, *resolve_layout(12, 4, None)), X3)
    assert tuple(resolve_layout(12, None, (4, 3))) == (4, 3)
    assert tuple(resolve_layout(12, 4, (4, 3))) == (4, 3)


def test_resolve_layout_univariate_by_default():
    assert tuple(resolve_layout(7, None, None)) == (7, 1)


def test_n_steps_not_dividing_width_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"n_steps=3 does not divide the 10 columns"):
        resolve_layout(10, 3, None)


def test_n_steps_disagreeing_with_3d_input():
    with pytest.raises(ValueError, match=r"3-D with 4 steps, but n_steps=5"):
        resolve_layout(12, 5, (4, 3))


def test_check_predict_layout():
    check_predict_layout(None, (4, 3))  # 2-D input: width checked elsewhere
    check_predict_layout((4, 3), (4, 3))
    with pytest.raises(ValueError, match="5 steps of 3 features.*fitted on 4 steps"):
        check_predict_layout((5, 3), (4, 3))
    with pytest.raises(ValueError, match="steps"):
        check_predict_layout((6, 2), (4, 3))  # same width, other layout


def _rows(seed=0, n=12, width=6, n_outputs=2):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, width))
    Y = rng.randint(2, size=(n, n_outputs)).astype(float)
    w = rng.uniform(0.1, 3.0, size=n)
    return X, Y, w


def test_canonical_rows_is_invariant_to_row_permutation():
    X, Y, w = _rows()
    X[5] = X[2]  # include duplicates with the same and different y
    Y[5] = Y[2]
    X[7] = X[3]
    Y[7] = 1 - Y[3]
    ref = canonical_rows(X, Y, w)
    for seed in range(5):
        perm = np.random.RandomState(seed).permutation(len(X))
        out = canonical_rows(X[perm], Y[perm], w[perm])
        for a, b in zip(ref, out):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes()


def test_canonical_rows_merges_duplicates_summing_weights():
    X, Y, w = _rows(n=6)
    X2 = np.vstack([X, X[[1, 1, 4]]])
    Y2 = np.vstack([Y, Y[[1, 1, 4]]])
    w2 = np.r_[w, 0.5, 0.25, 2.0]
    Xc, Yc, wc = canonical_rows(X2, Y2, w2)
    assert len(Xc) == 6
    total = {}
    for x, y, s in zip(X2, Y2, w2):
        key = (x.tobytes(), y.tobytes())
        total[key] = total.get(key, 0.0) + s
    for x, y, s in zip(Xc, Yc, wc):
        assert s == pytest.approx(total[(x.tobytes(), y.tobytes())], rel=1e-15)
    assert wc.sum() == pytest.approx(w2.sum())


def test_canonical_rows_keeps_rows_with_different_targets_apart():
    X = np.ones((2, 3))
    Y = np.array([[0.0], [1.0]])
    Xc, Yc, wc = canonical_rows(X, Y, np.ones(2))
    assert len(Xc) == 2
    np.testing.assert_array_equal(np.sort(Yc[:, 0]), [0, 1])


def test_canonical_rows_drops_zero_weights():
    X, Y, w = _rows(n=8)
    w[[0, 3]] = 0
    Xc, Yc, wc = canonical_rows(X, Y, w)
    assert len(Xc) == 6
    assert np.all(wc > 0)
    kept = {x.tobytes() for x in Xc}
    assert X[0].tobytes() not in kept and X[3].tobytes() not in kept


def test_canonical_rows_integer_weights_equal_repeated_rows():
    X, Y, _ = _rows(n=7)
    counts = np.array([1, 3, 2, 1, 4, 1, 2])
    weighted = canonical_rows(X, Y, counts.astype(float))
    repeated = canonical_rows(
        np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0), np.ones(counts.sum())
    )
    for a, b in zip(weighted, repeated):
        assert a.tobytes() == b.tobytes()


def test_canonical_rows_treats_signed_zeros_as_equal():
    X = np.array([[0.0, 1.0], [-0.0, 1.0]])
    Y = np.zeros((2, 1))
    Xc, _, wc = canonical_rows(X, Y, np.array([1.0, 2.0]))
    assert len(Xc) == 1 and wc[0] == 3.0


def test_canonical_rows_float32_input():
    X, Y, w = _rows()
    X = X.astype(np.float32)
    Xc, Yc, wc = canonical_rows(X, Y, w)
    assert Xc.dtype == np.float32
    assert len(Xc) == len(X)


def test_weighted_mean_scale():
    rng = np.random.RandomState(0)
    X = rng.normal(loc=[3.0, -2.0, 0.0], scale=[2.0, 0.5, 1.0], size=(20, 4, 3))
    X[:, :, 2] = 7.0  # constant feature
    w = rng.uniform(0.1, 2.0, size=20)
    mean, scale = weighted_mean_scale(X, w)
    steps_w = np.repeat(w, 4)
    flat = X.reshape(-1, 3)
    ref_mean = np.average(flat, axis=0, weights=steps_w)
    ref_var = np.average((flat - ref_mean) ** 2, axis=0, weights=steps_w)
    assert mean.dtype == scale.dtype == np.float64
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-13)
    np.testing.assert_allclose(scale[:2], np.sqrt(ref_var[:2]), rtol=1e-12)
    assert scale[2] == 1.0  # constant: no division by ~0
    # integer weights are repeated rows
    counts = rng.randint(1, 4, size=20)
    m1, s1 = weighted_mean_scale(X, counts.astype(float))
    m2, s2 = weighted_mean_scale(np.repeat(X, counts, axis=0), np.ones(counts.sum()))
    np.testing.assert_allclose(m1, m2, rtol=1e-13)
    np.testing.assert_allclose(s1, s2, rtol=1e-12)


def test_weighted_mean_scale_float32_and_chunks():
    rng = np.random.RandomState(1)
    X = rng.normal(loc=100.0, scale=3.0, size=(50, 3, 2))
    w = rng.uniform(0.5, 1.5, size=50)
    m64, s64 = weighted_mean_scale(X, w)
    m32, s32 = weighted_mean_scale(X.astype(np.float32), w)
    assert m32.dtype == np.float64
    np.testing.assert_allclose(m32, m64, rtol=1e-6)
    np.testing.assert_allclose(s32, s64, rtol=1e-4)
    mc, sc = weighted_mean_scale(X, w, chunk_rows=7)
    np.testing.assert_allclose(mc, m64, rtol=1e-13)
    np.testing.assert_allclose(sc, s64, rtol=1e-12)


def test_weighted_mean_scale_leaves_padding_out():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(6, 5, 2))
    X[1, 3:] = np.nan
    X[4, 1:] = np.nan
    w = np.ones(6)
    mean, scale = weighted_mean_scale(X, w)
    real = X[~np.isnan(X[:, :, 0])]
    np.testing.assert_allclose(mean, real.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(scale, real.std(axis=0), rtol=1e-12)


def test_sequence_lengths_and_pad_sequences():
    X = pad_sequences([[1, 2, 3], [4], [5, 6]])
    assert X.shape == (3, 3, 1)
    np.testing.assert_array_equal(sequence_lengths(X), [3, 1, 2])
    np.testing.assert_array_equal(X[1, 1:, 0], [np.nan, np.nan])
    bad = X.copy()
    bad[0, 1, 0] = np.nan  # a hole before real steps
    with pytest.raises(ValueError, match="end"):
        sequence_lengths(bad)
    with pytest.raises(ValueError, match="n_steps=2"):
        pad_sequences([[1, 2, 3]], n_steps=2)


# -- patches -------------------------------------------------------------


def test_make_patches_is_step_major_and_repeats_the_edge():
    X = np.arange(2 * 7 * 2, dtype=float).reshape(2, 7, 2)
    P = make_patches(X, 3)
    assert P.shape == (2, 3, 6)
    # patch k holds steps 3k, 3k+1, 3k+2, each with its 2 features
    np.testing.assert_array_equal(P[:, :2], X[:, :6].reshape(2, 2, 6))
    # the last patch has one real step (6); it is repeated
    np.testing.assert_array_equal(P[:, 2], np.tile(X[:, 6], 3))


def test_make_patches_patches_each_sequence_within_its_length():
    X = np.full((3, 7, 1), np.nan)
    lengths = [7, 4, 1]
    for n, length in enumerate(lengths):
        X[n, :length, 0] = 10 * n + np.arange(length)
    P = make_patches(X, 3)
    assert P.shape == (3, 3, 3)
    np.testing.assert_array_equal(P[1, 0], [10, 11, 12])
    np.testing.assert_array_equal(P[1, 1], [13, 13, 13])  # edge repeated
    assert np.isnan(P[1, 2]).all()  # after the sequence's last patch: padding
    np.testing.assert_array_equal(P[2, 0], [20, 20, 20])
    assert np.isnan(P[2, 1:]).all()
    np.testing.assert_array_equal(sequence_lengths(P), [3, 2, 1])
    # a sequence's patches do not depend on the width of the batch's padding
    wider = np.concatenate([X, np.full((3, 5, 1), np.nan)], axis=1)
    np.testing.assert_array_equal(make_patches(wider, 3)[:, :3], P)


def test_make_patches_of_1_and_of_a_divisor():
    X = np.random.RandomState(0).normal(size=(2, 6, 3))
    assert make_patches(X, 1) is X
    np.testing.assert_array_equal(make_patches(X, 2), X.reshape(2, 3, 6))
    assert make_patches(X.astype(np.float32), 4).dtype == np.float32
    assert make_patches(X, 10).shape == (2, 1, 30)


@pytest.mark.parametrize(
    "X, patch_size, error, match",
    [
        (np.zeros((2, 3)), 2, ValueError, "3-D"),
        (np.zeros((2, 3, 1)), 0, ValueError, "at least 1"),
        (np.zeros((2, 3, 1)), 2.0, TypeError, "int"),
        (np.zeros((2, 3, 1)), True, TypeError, "int"),
    ],
)
def test_make_patches_rejects_bad_input(X, patch_size, error, match):
    with pytest.raises(error, match=match):
        make_patches(X, patch_size)


def test_make_patches_rejects_padding_inside_a_sequence():
    X = np.zeros((1, 4, 1))
    X[0, 1] = np.nan
    with pytest.raises(ValueError, match="end"):
        make_patches(X, 2)


@pytest.mark.parametrize(
    "patch_size, n_steps, expected",
    [
        (None, 500, 1),
        (7, 3, 7),
        ("auto", 1, 1),
        ("auto", AUTO_PATCH_STEPS, 1),
        ("auto", AUTO_PATCH_STEPS + 1, 2),
        ("auto", 286, -(-286 // AUTO_PATCH_STEPS)),
    ],
)
def test_resolve_patch_size(patch_size, n_steps, expected):
    p = resolve_patch_size(patch_size, n_steps)
    assert p == expected
    if patch_size == "auto":  # long series unroll over at most AUTO_PATCH_STEPS
        assert -(-n_steps // p) <= AUTO_PATCH_STEPS
