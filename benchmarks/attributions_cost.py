"""Completeness and cost of ``attributions`` on the default estimators.

40 test series of 50 steps and 2 features; default ``LSTMClassifier()``
(max pooling, 3 networks) and ``LSTMRegressor()`` fitted on 200 series of a
generated task (the label is a bump on a few steps of the first feature and
the level of the second). Reports, per estimator, the completeness error
(median and worst over the 40 series) and the time of one ``attributions``
call against one ``predict`` call (median of repeats).

Run: ``python benchmarks/attributions_cost.py [classifier|regressor]``.
"""

import sys
import time
import warnings

import numpy as np

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor


def task(n, rng):
    X = rng.normal(size=(n, 50, 2))
    y = rng.randint(2, size=n)
    X[:, 10:15, 0] += (2 * y - 1)[:, None] * 1.0
    X[:, :, 1] += 0.5 * (2 * y - 1)[:, None] * rng.uniform(0, 1, size=(n, 1))
    return X, y


def timed(f, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def main(which):
    rng = np.random.RandomState(0)
    X, y = task(200, rng)
    X_test, _ = task(40, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "classifier":
            est = LSTMClassifier(random_state=0).fit(X, y)
        else:
            est = LSTMRegressor(random_state=0).fit(X, X[:, 10:15, 0].mean(axis=1) + y)
    _, t_predict = timed(lambda: est.predict(X_test), 20)
    A, t_attr = timed(lambda: est.attributions(X_test), 3)
    B = est._attribution_baseline(X_test)
    if which == "classifier":
        P, P0 = est.predict_proba(X_test), est.predict_proba(B)
        col = P.argmax(axis=1)
        change = (P - P0)[np.arange(len(P)), col]
        unit = 1.0
    else:
        change = est.predict(X_test) - est.predict(B)
        unit = est.y_scale_[0]
    error = np.abs(A.reshape(len(A), -1).sum(axis=1) - change) / unit
    print(f"{which}: completeness error median {np.median(error):.1e}, worst "
          f"{error.max():.1e}; predict {t_predict * 1e3:.1f} ms, attributions "
          f"{t_attr:.2f} s, ratio {t_attr / t_predict:.0f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "classifier")
