"""Input shaping: 2-D step-major and 3-D layouts, canonical rows, standardisation."""

import warnings

import numpy as np
import pytest

from sklearn_gatedmem import _input
from sklearn_gatedmem._input import (
    canonical_rows,
    check_predict_layout,
    AUTO_PATCH_STEPS,
    make_patches,
    has_nan,
    read_sequences,
    pad_sequences,
    patch_steps,
    resolve_layout,
    resolve_patch_size,
    sequence_lengths,
    single_sequence_hint,
    warn_layout,
    combine_moments,
    mean_scale,
    weighted_mean_scale,
    weighted_moments,
)


def test_read_sequences_is_the_c_order_flattening():
    X = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    flat, steps_features, ragged = read_sequences(X)
    assert not ragged
    assert steps_features == (3, 4)
    np.testing.assert_array_equal(flat, X.reshape(2, 12))
    # step-major: X[i, t * d + j] is step t, feature j
    for t in range(3):
        for j in range(4):
            np.testing.assert_array_equal(flat[:, t * 4 + j], X[:, t, j])


def test_read_sequences_of_fortran_and_list_input():
    X = np.random.RandomState(0).normal(size=(3, 4, 2))
    flat_f, sf, _ = read_sequences(np.asfortranarray(X))
    np.testing.assert_array_equal(flat_f, X.reshape(3, 8))
    assert sf == (4, 2)
    flat_l, sl, _ = read_sequences(X.tolist())
    np.testing.assert_array_equal(flat_l, X.reshape(3, 8))
    assert sl == (4, 2)


@pytest.mark.parametrize(
    "X", [np.zeros((3, 4)), [[1.0, 2.0], [3.0, 4.0]], np.zeros(5), [["a"], ["b", "c"]]],
    ids=["2d", "list2d", "1d", "ragged-strings"],
)
def test_read_sequences_leaves_other_input_alone(X):
    out, steps_features, ragged = read_sequences(X)
    assert out is X
    assert steps_features is None and not ragged


def test_read_sequences_leaves_sparse_and_dataframes_alone():
    sparse = pytest.importorskip("scipy.sparse")
    S = sparse.csr_matrix(np.eye(3))
    assert read_sequences(S) == (S, None, False)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(np.eye(3), columns=list("abc"))
    out, sf, ragged = read_sequences(df)
    assert out is df and sf is None and not ragged


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
    with pytest.raises(ValueError, match="padding=\"post\""):
        sequence_lengths(pad_sequences([[1, 2, 3], [4]], padding="pre"))


# -- patches -------------------------------------------------------------


def test_shift_offsets_spread_over_one_patch():
    assert _input.shift_offsets(9, 5) == [0, 2, 4, 5, 7]  # round(k * 9 / 5)
    assert _input.shift_offsets(4, 4) == [0, 1, 2, 3]
    assert _input.shift_offsets(2, 2) == [0, 1]
    assert _input.shift_offsets(7, 1) == [0]


def test_shift_sequences_drops_the_first_steps_within_each_length():
    X = np.arange(12.0).reshape(2, 6, 1)
    X[1, 4:] = np.nan  # 4 real steps
    shifted, lengths = _input.shift_sequences(X, np.array([6, 4]), 2)
    np.testing.assert_array_equal(lengths, [4, 2])
    np.testing.assert_array_equal(shifted[0, :, 0], [2, 3, 4, 5, np.nan, np.nan])
    np.testing.assert_array_equal(shifted[1, :, 0], [8, 9] + [np.nan] * 4)
    # a sequence keeps its last real step
    shifted, lengths = _input.shift_sequences(X, np.array([6, 4]), 5)
    np.testing.assert_array_equal(lengths, [1, 1])
    np.testing.assert_array_equal(shifted[:, 0, 0], [5, 9])
    assert np.isnan(shifted[:, 1:]).all()
    assert _input.shift_sequences(X, np.array([6, 4]), 0)[0] is X


@pytest.mark.parametrize(
    "patch_shifts, patch_size, n_steps, n_features, lengths, expected",
    [
        ("auto", 9, 275, 1, [275] * 30, 5),
        ("auto", 2, 60, 1, [60] * 30, 2),  # at most patch_size distinct offsets
        ("auto", 1, 24, 1, [24] * 20, 1),  # steps are not patched
        ("auto", 100, 100, 1, [100] * 30, 1),  # the whole series in one step
        ("auto", 63, 2000, 1, [2000] * 100, 2),  # 200,000 values: a larger set
        ("auto", 9, 275, 1, [275] * 101, 2),  # 101 cases: a larger set, 3,131 steps
        ("auto", 42, 1344, 1, [300] * 537, 2),  # ragged: the real steps count
        ("auto", 2, 60, 1, [60] * 300, 1),  # 9,000 patch steps
        ("auto", 82, 2618, 6, [1600] * 30, 1),  # 288,000 values
        ("auto", 9, 275, 1, None, 1),  # unknown: a dask collection
        (3, 9, 275, 1, [275] * 1000, 3),  # an int is used as it is
        (7, 4, 100, 1, [100] * 10, 4),  # ... up to patch_size
    ],
)
def test_resolve_patch_shifts(patch_shifts, patch_size, n_steps, n_features, lengths, expected):
    lengths = None if lengths is None else np.array(lengths)
    assert _input.resolve_patch_shifts(
        patch_shifts, patch_size, n_steps, n_features, lengths
    ) == expected


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


def test_instance_norm_z_scores_each_sequence_over_its_real_steps():
    X = np.full((3, 5, 2), np.nan)
    X[0] = np.c_[[1.0, 2, 3, 4, 5], [7.0] * 5]  # a constant feature reads 0
    X[1, :2] = [[10.0, 0], [30, 1e-300]]  # tiny values are not constant
    X[2, :1] = [[4.0, -4.0]]  # one real step: no spread
    Z = make_patches(X, 1, instance_norm="replace")
    expected = (X[0, :, 0] - 3) / np.sqrt(2)
    np.testing.assert_allclose(Z[0, :, 0], expected, rtol=1e-15)
    np.testing.assert_array_equal(Z[0, :, 1], 0.0)
    np.testing.assert_allclose(Z[1, :2], [[-1, -1], [1, 1]], rtol=1e-15)
    np.testing.assert_array_equal(Z[2, 0], [0.0, 0.0])
    assert np.isnan(Z[1, 2:]).all() and np.isnan(Z[2, 1:]).all()  # padding stays
    both = make_patches(X, 1, instance_norm="append")
    np.testing.assert_array_equal(both[:, :, :2], X)
    np.testing.assert_array_equal(both[:, :, 2:], Z)
    # the same series at any level and scale reads the same
    np.testing.assert_allclose(make_patches(X * 1e5, 1, instance_norm="replace"), Z, atol=1e-12)
    np.testing.assert_allclose(make_patches(X * 1e-5, 1, instance_norm="replace"), Z, atol=1e-12)
    huge = make_patches(np.array([[[0.0], [1e300], [-1e300]]]), 1, instance_norm="replace")
    np.testing.assert_allclose(huge[0, :, 0], [0, 1, -1] / np.sqrt(2 / 3))  # no overflow
    np.testing.assert_allclose(  # (not the 1e-300 one: 1e-300 - 3 is -3)
        make_patches(X[[0, 2]] * 1e5 - 3, 1, instance_norm="replace"), Z[[0, 2]], atol=1e-12
    )
    # then differences, then patches: (2 + 2) * 2 features per patch of 2
    assert make_patches(X, 2, True, "append").shape == (3, 3, 16)
    assert make_patches(X.astype(np.float32), 2, instance_norm="append").dtype == np.float32
    # float32 reads as float64 does, to its rounding (1e-300 is 0 in float32)
    np.testing.assert_allclose(
        make_patches(X[[0, 2]].astype(np.float32), 1, instance_norm="replace"), Z[[0, 2]],
        rtol=1e-6, atol=1e-6,
    )
    with pytest.raises(ValueError, match="instance_norm"):
        make_patches(X, 1, instance_norm="series")
    # by chunks of sequences: the same values
    np.testing.assert_array_equal(_input._with_instance_norm(X, "replace", chunk_rows=2), Z)


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


@pytest.mark.parametrize(
    "lengths, n_features, expected",
    [
        ([100, 200, 300, 434, 1344], 1, 14),  # small, ragged: the upper quartile
        ([1344] * 5, 1, 42),  # equal lengths: the longest, as without lengths
        ([100] * 75 + [1344] * 25, 1, 42),  # a quarter of the longest
        ([100] * 76 + [1344] * 24, 1, 4),  # fewer: the short ones set it
        ([100] * 100 + [1344], 1, 42),  # 101 cases: a larger set, the longest
        ([1344] + [1000] * 29, 5, 42),  # 151,720 values: a larger set
        ([1344] + [1000] * 28, 5, 32),  # 146,720 values: small
    ],
)
def test_resolve_patch_size_of_a_small_ragged_set_reads_its_typical_length(
    lengths, n_features, expected
):
    assert resolve_patch_size("auto", 1344, np.array(lengths), n_features) == expected
    assert resolve_patch_size("auto", 1344, None, n_features) == 42  # unknown lengths
    assert resolve_patch_size(5, 1344, np.array(lengths), n_features) == 5  # an int


def test_small_training_set_counts_cases_and_real_values():
    cases, values = _input.SHIFTS_MAX_SAMPLES, _input.SHIFTS_MAX_VALUES
    assert _input.small_training_set(np.full(cases, 3), 1)
    assert not _input.small_training_set(np.full(cases + 1, 3), 1)
    assert _input.small_training_set([values // 2], 2)
    assert not _input.small_training_set([values // 2 + 1], 2)


# -- pad_sequences: Keras's options ------------------------------------------


def test_pad_sequences_keras_semantics():
    seqs = [[1, 2, 3, 4], [5], [6, 7]]
    post = pad_sequences(seqs, maxlen=3, value=0)[:, :, 0]
    np.testing.assert_array_equal(post, [[1, 2, 3], [5, 0, 0], [6, 7, 0]])
    pre = pad_sequences(seqs, maxlen=3, padding="pre", truncating="pre", value=-1)
    np.testing.assert_array_equal(pre[:, :, 0], [[2, 3, 4], [-1, -1, 5], [-1, 6, 7]])
    mixed = pad_sequences(seqs, maxlen=2, padding="pre", truncating="post", value=0)
    np.testing.assert_array_equal(mixed[:, :, 0], [[1, 2], [0, 5], [6, 7]])
    longer = pad_sequences(seqs, maxlen=6)  # NaN after, by default
    assert longer.shape == (3, 6, 1)
    np.testing.assert_array_equal(sequence_lengths(longer), [4, 1, 2])
    as_int = pad_sequences(seqs, value=0, dtype=np.int32)
    assert as_int.dtype == np.int32 and as_int.shape == (3, 4, 1)


def test_pad_sequences_multivariate_empty_and_channels_first():
    rng = np.random.RandomState(0)
    seqs = [rng.normal(size=(n, 2)) for n in (3, 0, 5)]
    X = pad_sequences(seqs)
    assert X.shape == (3, 5, 2)
    np.testing.assert_array_equal(X[0, :3], seqs[0])
    assert np.isnan(X[1]).all()  # an empty sequence is all padding, as in Keras
    Xf = pad_sequences([s.T for s in seqs], data_format="channels_first")
    assert Xf.shape == (3, 2, 5)
    np.testing.assert_array_equal(Xf, X.transpose(0, 2, 1))
    univariate = pad_sequences([[1, 2], [3]], data_format="channels_first")
    assert univariate.shape == (2, 1, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(padding="middle"), "padding"),
        (dict(truncating="both"), "truncating"),
        (dict(maxlen=-1), "maxlen"),
        (dict(dtype=np.int64), "floating dtype"),
        (dict(data_format="NCT"), "data_format"),
    ],
)
def test_pad_sequences_bad_options_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences([[1, 2], [3]], **kwargs)


def test_pad_sequences_of_channels_first_lists_read_channels_last_names_data_format():
    series = [np.zeros((3, 10)), np.zeros((3, 12))]  # aeon's (n_channels, n_i)
    with pytest.raises(ValueError, match='data_format="channels_first"'):
        pad_sequences(series)
    with pytest.raises(ValueError, match="expected 2-D or 3-D"):
        pad_sequences([np.zeros((2, 3, 4))])


# -- reading aeon / sktime layouts and ragged lists --------------------------


def test_read_sequences_channels_first_is_the_transpose():
    X = np.random.RandomState(0).normal(size=(4, 3, 7))  # (n, C, T)
    flat, steps_features, ragged = read_sequences(X, "channels_first")
    assert steps_features == (7, 3) and not ragged
    np.testing.assert_array_equal(flat, X.transpose(0, 2, 1).reshape(4, 21))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_read_sequences_pads_ragged_lists(data_format):
    rng = np.random.RandomState(0)
    seqs = [rng.normal(size=(n, 2)) for n in (4, 2, 5)]
    given = seqs if data_format == "channels_last" else [s.T for s in seqs]
    as_objects = np.empty(len(given), dtype=object)
    as_objects[:] = given
    for X in (given, as_objects):
        flat, steps_features, ragged = read_sequences(X, data_format)
        assert ragged and steps_features == (5, 2)
        np.testing.assert_array_equal(flat, pad_sequences(seqs).reshape(3, 10))
    flat, steps_features, ragged = read_sequences([[1, 2, 3], [4]], data_format)
    assert ragged and steps_features == (3, 1)  # 1-D sequences: univariate


def test_read_sequences_refuses_4d_input():
    with pytest.raises(ValueError, match="expected 2-D or 3-D"):
        read_sequences(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="expected 2-D or 3-D"):
        read_sequences(np.zeros((2, 3, 4, 5)).tolist())
    with pytest.raises(ValueError, match="expected 2-D or 3-D"):
        read_sequences([np.zeros((3, 4, 2)), np.zeros((2, 4, 2))])


def test_warn_layout_only_for_one_step_of_many_features():
    with pytest.warns(UserWarning, match='data_format="channels_first"'):
        warn_layout((1, 150), "channels_last")
    with pytest.warns(UserWarning, match='data_format="channels_last"'):
        warn_layout((1, 150), "channels_first")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for steps_features in [None, (1, 1), (2, 300), (20, 300), (100, 6)]:
            warn_layout(steps_features, "channels_last")


def test_check_predict_layout_with_any_steps_and_the_other_layout():
    check_predict_layout((40, 3), (12, 3), any_steps=True)
    with pytest.raises(ValueError, match="12 steps of 3 features"):
        check_predict_layout((40, 3), (12, 3))
    with pytest.raises(ValueError, match="data_format"):
        check_predict_layout((3, 12), (12, 3))  # transposed
    with pytest.raises(ValueError, match="any number of steps"):
        check_predict_layout((40, 4), (12, 3), any_steps=True)


def test_single_sequence_hint():
    fitted, width = (8, 3), 24
    error = single_sequence_hint((8, 3), fitted, width, "channels_last", False, "Est")
    assert "X has 3 features, but Est is expecting 24 features" in str(error)
    assert "X[None]" in str(error)
    assert single_sequence_hint((3, 8), fitted, width, "channels_first", False) is not None
    assert single_sequence_hint((9, 3), fitted, width, "channels_last", False) is None
    assert single_sequence_hint((9, 3), fitted, width, "channels_last", True) is not None
    assert single_sequence_hint((5, 24), fitted, width, "channels_last", True) is None


def test_has_nan():
    X = np.zeros((10, 4, 2))
    assert not has_nan(X)
    X[7, 3, 1] = np.nan
    assert has_nan(X) and has_nan(X, chunk_rows=3)
    big = np.full((5, 2), np.finfo(np.float64).max)  # its sum overflows
    assert not has_nan(big)


# -- canonical_rows ------------------------------------------------------------


def _canonical_by_bytes(X, Y, w):
    """The canonical rows ordered by their bytes, written out plainly."""
    keep = w != 0
    X, Y, w = X[keep], Y[keep], w[keep]
    rows = np.hstack([X.astype(np.float64) + 0.0, Y.astype(np.float64) + 0.0])
    rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1] * 8))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    merged = np.zeros(len(first))
    for i in np.lexsort((w, inverse)):
        merged[inverse[i]] += w[i]
    return X[first] + 0.0, Y[first] + 0.0, merged


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_canonical_rows_after_a_hash_collision(dtype, monkeypatch):
    """Rows of equal hash are told apart by their bytes: with every hash equal
    the result is the plain sort by bytes, duplicates merged."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 3, size=(40, 3)).astype(dtype)
    X[rng.rand(*X.shape) < 0.2] = -0.0
    Y = rng.randint(0, 2, size=(40, 1)).astype(float)
    w = rng.randint(0, 3, size=40).astype(float)
    expected = _canonical_by_bytes(X, Y, w)
    monkeypatch.setattr(_input, "_row_hashes", lambda X, Y, c: np.zeros(len(X), np.uint64))
    Xc, Yc, wc = canonical_rows(X, Y, w, chunk_rows=6)
    np.testing.assert_array_equal(Xc, expected[0])
    np.testing.assert_array_equal(Yc, expected[1])
    np.testing.assert_allclose(wc, expected[2], rtol=1e-15)


def test_canonical_rows_are_the_same_bytes_for_any_order_with_signed_zeros():
    rng = np.random.RandomState(1)
    X = rng.randint(0, 2, size=(50, 4)).astype(float)
    X[rng.rand(*X.shape) < 0.3] *= -0.0  # -0.0 where X is 0
    Y = rng.randint(0, 2, size=(50, 1)).astype(float)
    w = rng.uniform(0.5, 2, size=50)
    ref = canonical_rows(X, Y, w)
    assert not np.signbit(ref[0]).any()
    assert len(ref[0]) == len(_canonical_by_bytes(X, Y, w)[0])
    for seed in range(3):
        perm = np.random.RandomState(seed).permutation(50)
        out = canonical_rows(X[perm], Y[perm], w[perm], chunk_rows=11)
        for a, b in zip(ref, out):
            assert a.tobytes() == b.tobytes()


def test_moments_of_blocks_combine_to_those_of_all_rows():
    # blocks of very different magnitudes and weights, NaN padding in one
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 4, 3)) * np.array([1e-300, 1.0, 1e300])
    X[:30] *= 1e-5
    X[60:, 2:] = np.nan
    sw = rng.uniform(size=90) * np.repeat([1e-200, 1.0, 1e200], 30)
    mean, scale = weighted_mean_scale(X, sw)
    moments = None
    for rows in (slice(0, 30), slice(30, 31), slice(31, 60), slice(60, 90), slice(90, 90)):
        moments = combine_moments(moments, weighted_moments(X[rows], sw[rows]))
    ours_mean, ours_scale = mean_scale(moments)
    np.testing.assert_allclose(ours_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(ours_scale, scale, rtol=1e-12)
    # one block is weighted_mean_scale itself, bit for bit
    np.testing.assert_array_equal(mean_scale(weighted_moments(X, sw))[1], scale)


# -- missing="carry": gaps inside the series -----------------------------------


def test_carry_forward_fills_gaps_marks_them_and_keeps_padding():
    nan = np.nan
    X = np.array([
        [[nan, 1.0], [2.0, nan], [nan, nan], [4.0, 5.0], [nan, nan]],
        [[7.0, 8.0], [nan, 9.0], [nan, nan], [nan, nan], [nan, nan]],
    ])
    lengths = np.array([4, 2])  # trailing all-NaN steps are padding
    out = _input.carry_forward(X, lengths, fill=np.array([-1.0, -2.0]))
    assert out.shape == (2, 5, 4)
    np.testing.assert_array_equal(out[0, :4, :2], [[-1, 1], [2, 1], [2, 1], [4, 5]])
    np.testing.assert_array_equal(out[0, :4, 2:], [[1, 0], [0, 1], [1, 1], [0, 0]])
    np.testing.assert_array_equal(out[1, :2], [[7, 8, 0, 0], [7, 9, 1, 0]])
    assert np.isnan(out[0, 4:]).all() and np.isnan(out[1, 2:]).all()


def test_sequence_lengths_with_gaps_reads_only_trailing_steps_as_padding():
    nan = np.nan
    X = np.array([[[1.0], [nan], [2.0], [nan]], [[nan], [3.0], [nan], [nan]]])
    np.testing.assert_array_equal(sequence_lengths(X, gaps=True), [3, 2])
    with pytest.raises(ValueError, match='missing="carry"'):
        sequence_lengths(X)
    with pytest.raises(ValueError, match="no real step"):
        sequence_lengths(np.full((1, 3, 1), nan), gaps=True)


def test_nan_error_names_the_carry_option():
    assert 'missing="carry"' in str(_input.nan_error())


@pytest.mark.parametrize("differences", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("padded", [False, True])
def test_patch_channels_adjoint_is_the_transpose(p, differences, padded):
    """<patch_channels(C), G> = <C, adjoint(G)> for every C and G: the chain
    rule through differences and patches (edge repetition included)."""
    from sklearn_gatedmem._input import patch_channels, patch_channels_adjoint

    rng = np.random.RandomState(p)
    n, T, c = 4, 7, 2
    lengths = np.array([7, 5, 1, 4]) if padded else np.full(n, T)
    C = rng.normal(size=(n, T, c))
    C[np.arange(T) >= lengths[:, None]] = np.nan
    U = patch_channels(C, p, differences)
    np.testing.assert_array_equal(U, make_patches(C, p, differences))
    G = rng.normal(size=U.shape)
    G[np.isnan(U)] = 0  # no gradient reaches padding
    adjoint = patch_channels_adjoint(G, T, p, differences, lengths)
    assert adjoint.shape == C.shape
    real = ~np.isnan(C)
    np.testing.assert_allclose(np.nansum(U * G), np.sum(C[real] * adjoint[real]))
    assert np.all(adjoint[~real] == 0)


def test_patch_steps_count_each_sequence_s_patches_started():
    # a sequence's last, partial patch is a step of the time loop too
    assert patch_steps(np.array([10, 7, 3]), 3) == 4 + 3 + 1
    assert patch_steps([5, 5], 1) == 10
    assert patch_steps(np.array([1, 2]), 8) == 2
    assert isinstance(patch_steps(np.array([4], dtype=np.int64), 2), int)
