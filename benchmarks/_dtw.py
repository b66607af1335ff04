"""1-NN DTW for the benchmarks (not part of the package).

Classic DTW: squared point-wise differences (summed over channels), steps
(i-1, j-1), (i-1, j), (i, j-1), an optional Sakoe-Chiba band of
``window * max(len_a, len_b)`` steps (widened to ``|len_a - len_b|`` so
that unequal series still align end to end); ``window=1`` is full DTW (the
UCR archive's "DTW (w=100)" column). Series may have different lengths.

With numba (a benchmark-only, optional dependency) the 1-NN search is
compiled, parallel over test series, and early-abandons a candidate when a
whole DP row exceeds the best distance found so far (exact: the DP values
never decrease along a warping path). Without numba, a NumPy version
vectorised over all training series along anti-diagonals is used for
equal-length data (slow for long series); unequal-length data then needs
numba.
"""

import numpy as np

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


if HAVE_NUMBA:

    @numba.njit(cache=False, fastmath=True)
    def _dtw_ea(a, b, w, best):
        n, m = a.shape[0], b.shape[0]
        d = a.shape[1]
        inf = np.inf
        prev = np.full(m + 1, inf)
        cur = np.full(m + 1, inf)
        prev[0] = 0.0
        for i in range(1, n + 1):
            cur[:] = inf
            # band around the diagonal of the n x m rectangle
            c = (i * m) // n
            lo = max(1, c - w)
            hi = min(m, c + w)
            rowmin = inf
            for j in range(lo, hi + 1):
                cost = 0.0
                for k in range(d):
                    diff = a[i - 1, k] - b[j - 1, k]
                    cost += diff * diff
                v = prev[j - 1]
                if prev[j] < v:
                    v = prev[j]
                if cur[j - 1] < v:
                    v = cur[j - 1]
                v += cost
                cur[j] = v
                if v < rowmin:
                    rowmin = v
            if rowmin > best:
                return inf
            prev, cur = cur, prev
        return prev[m]

    @numba.njit(parallel=True)
    def _nn_numba(test, test_len, train, train_len, window, order):
        n_test = test_len.shape[0]
        n_train = train_len.shape[0]
        out = np.empty(n_test, dtype=np.int64)
        for q in numba.prange(n_test):
            a = test[q, : test_len[q]]
            best = np.inf
            arg = 0
            for k in range(n_train):
                r = order[q, k]
                b = train[r, : train_len[r]]
                L = max(a.shape[0], b.shape[0])
                w = int(np.ceil(window * L))
                diff = abs(a.shape[0] - b.shape[0])
                if w < diff:
                    w = diff
                if w < 1:
                    w = 1
                dist = _dtw_ea(a, b, w, best)
                if dist < best:
                    best = dist
                    arg = r
            out[q] = arg
        return out


def _stack(X):
    """list of (T_i, d) or (n, T, d) -> zero-filled (n, T_max, d) + lengths."""
    if isinstance(X, np.ndarray):
        return np.ascontiguousarray(X, dtype=np.float64), np.full(len(X), X.shape[1], np.int64)
    lens = np.array([len(x) for x in X], np.int64)
    out = np.zeros((len(X), lens.max(), X[0].shape[1]))
    for i, x in enumerate(X):
        out[i, : len(x)] = x
    return out, lens


def _candidate_order(test, test_len, train, train_len, length=128):
    """Per query, the training series by increasing Euclidean distance after
    resampling both to ``length`` points: the likely nearest neighbours come
    first, so early abandoning prunes the rest sooner (the result is exact
    whatever the order; ties keep the first index found)."""

    def rs(X, lens):
        grid = np.linspace(0.0, 1.0, length)
        out = np.empty((len(X), length * X.shape[2]))
        for i in range(len(X)):
            src = np.linspace(0.0, 1.0, lens[i])
            out[i] = np.stack([np.interp(grid, src, X[i, : lens[i], j])
                               for j in range(X.shape[2])], axis=1).ravel()
        return out

    A, B = rs(test, test_len), rs(train, train_len)
    d = (A ** 2).sum(1)[:, None] - 2 * A @ B.T + (B ** 2).sum(1)[None, :]
    return np.ascontiguousarray(np.argsort(d, axis=1, kind="stable"), dtype=np.int64)


def _nn_numpy(test, train, window):
    """Equal length only: DP along anti-diagonals, vectorised over train."""
    n_train, T, _ = train.shape
    w = max(1, int(np.ceil(window * T)))
    out = np.empty(len(test), dtype=np.int64)
    ii, jj = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    for q, a in enumerate(test):
        C = ((a[None, :, None, :] - train[:, None, :, :]) ** 2).sum(-1)  # (n_train, T, T)
        C[:, np.abs(ii - jj) > w] = np.inf
        D = np.full((n_train, T + 1, T + 1), np.inf)
        D[:, 0, 0] = 0.0
        for s in range(2, 2 * T + 1):  # i + j = s, 1-based
            i = np.arange(max(1, s - T), min(T, s - 1) + 1)
            j = s - i
            m = np.minimum(np.minimum(D[:, i - 1, j - 1], D[:, i - 1, j]), D[:, i, j - 1])
            D[:, i, j] = C[:, i - 1, j - 1] + m
        out[q] = int(np.argmin(D[:, T, T]))
    return out


def warmup():
    """Compile the numba kernels on tiny data (so fit/predict times exclude JIT)."""
    if HAVE_NUMBA:
        x = np.zeros((2, 4, 1))
        _nn_numba(x, np.array([4, 3]), x, np.array([4, 2]), 1.0, np.array([[0, 1], [1, 0]]))


class OneNNDTW:
    """1-NN with DTW: ``fit`` stores the training set, ``predict`` searches."""

    def __init__(self, window=1.0):
        self.window = window

    def fit(self, X, y):
        self.train_, self.train_len_ = _stack(X)
        self.y_ = np.asarray(y)
        return self

    def predict(self, X):
        test, test_len = _stack(X)
        if HAVE_NUMBA:
            order = _candidate_order(test, test_len, self.train_, self.train_len_)
            idx = _nn_numba(test, test_len, self.train_, self.train_len_, float(self.window), order)
        else:
            if not (isinstance(X, np.ndarray) and (self.train_len_ == self.train_len_[0]).all()):
                raise RuntimeError("1-NN DTW on unequal-length series needs numba")
            idx = _nn_numpy(test, self.train_, self.window)
        return self.y_[idx]
