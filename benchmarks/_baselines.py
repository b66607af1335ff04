"""Baselines of ``accuracy.py`` that need optional dependencies: MiniRocket
(aeon) and 1-NN DTW (numba, see ``_dtw``). Each runs in this interpreter when
its dependency imports, else in another one (``_aux.py``) when given, else
reports "n/a".
"""

import time

import numpy as np


def have_aeon():
    try:
        import aeon  # noqa: F401
        from aeon.classification.convolution_based import MiniRocketClassifier  # noqa: F401

        return True
    except Exception:
        return False


def have_numba():
    try:
        import numba  # noqa: F401

        return True
    except Exception:
        return False


def minirocket(task, seed, threads):
    """aeon's MiniRocket pipeline (10k features + RidgeClassifierCV / RidgeCV).
    Takes (n, T, d) channels-last arrays; aeon wants (n, d, T)."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.regression.convolution_based import MiniRocketRegressor

    cls = MiniRocketClassifier if task == "classification" else MiniRocketRegressor
    est = cls(random_state=seed, n_jobs=threads)

    class ChannelsFirst:
        def fit(self, X, y):
            est.fit(np.ascontiguousarray(np.transpose(X, (0, 2, 1))), y)
            return self

        def predict(self, X):
            return est.predict(np.ascontiguousarray(np.transpose(X, (0, 2, 1))))

    return ChannelsFirst()


def warmup_minirocket(threads):
    """Compile aeon's numba kernels on tiny data, outside the timed fits."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(8, 20, 1)), np.arange(8) % 2
    minirocket("classification", 0, threads).fit(X, y).predict(X)
    minirocket("regression", 0, threads).fit(X, rng.normal(size=8)).predict(X)
    X2 = rng.normal(size=(8, 20, 2))  # the multivariate kernels are compiled apart
    minirocket("classification", 0, threads).fit(X2, y).predict(X2)
    minirocket("regression", 0, threads).fit(X2, rng.normal(size=8)).predict(X2)


def make(model, task, seed, threads):
    if model == "minirocket":
        return minirocket(task, seed, threads)
    if model == "dtw":
        import _dtw

        return _dtw.OneNNDTW(window=1.0)
    raise KeyError(model)


def warmup(model, threads):
    if model == "minirocket":
        warmup_minirocket(threads)
    elif model == "dtw":
        import _dtw

        _dtw.warmup()


def timed(est, Xtr, ytr, Xte):
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    t1 = time.perf_counter()
    pred = est.predict(Xte)
    t2 = time.perf_counter()
    return np.asarray(pred), t1 - t0, t2 - t1


def pack(X):
    """(n, T, d) array or list of (T_i, d) -> zero-padded array, lengths."""
    if isinstance(X, np.ndarray):
        return X, np.full(len(X), X.shape[1])
    lens = np.array([len(x) for x in X])
    out = np.zeros((len(X), lens.max(), X[0].shape[1]))
    for i, x in enumerate(X):
        out[i, : len(x)] = x
    return out, lens


def unpack(X, lens):
    if (lens == X.shape[1]).all():
        return X
    return [X[i, :L] for i, L in enumerate(lens)]


def run_external(model, d):
    task, seed, threads = str(d["task"]), int(d["seed"]), int(d["threads"])
    warmup(model, threads)
    Xtr = unpack(d["X_train"], d["len_train"])
    Xte = unpack(d["X_test"], d["len_test"])
    y = d["y_train"]
    pred, fit_s, pred_s = timed(make(model, task, seed, threads), Xtr, y, Xte)
    return {"pred": pred.tolist(), "fit_s": fit_s, "predict_s": pred_s}
