"""How far below the training mean can any learner get on the generated `noisy` task?

Issue 19 asks the default regressor to score an RMSE below the mean predictor's
on every development regression set, `noisy` included, cut to 30 and 60 cases
as well as at its full 100. This script measures what simple learners reach on
fresh draws of the same generator (``_data.load_noisy``: 40 steps of Gaussian
noise, the target 0.35 times the scaled mean of steps 10 to 19 plus unit
noise), so that the default's figures can be read against what the data allow:

- ``mean``: the training mean (the default's fall-back);
- ``oracle_window``: least squares on the mean of steps 10 to 19, the one
  feature that carries the signal (a learner told where it is: a bound, not
  a baseline);
- ``ridgecv``: the learning curves' RidgeCV (standardised columns, 13 penalties
  from 1e-3 to 1e3), and ``ridgecv_wide`` with penalties up to 1e5;
- ``pls1``: partial least squares with one component;
- ``mean_pool``: least squares on each series' mean over all 40 steps;
- ``ridge_smooth``: ``ridgecv_wide`` on the 31 moving averages of 10 steps
  (a smoothness prior that knows the window's width, not its place).

Each row: the mean RMSE over the draws (test sets of 2,000 cases) and the
share of draws in which the learner is below the mean. Seeds 1000 and up, so
that no draw is one of the learning curves'. Takes about 10 s::

    python benchmarks/noisy_bound.py [--draws 200]
"""
import argparse
import warnings

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import _data


def _window(X):
    return X[:, 10:20].mean(axis=1, keepdims=True)


def _series_mean(X):
    return X.mean(axis=1, keepdims=True)


def _moving_averages(X):
    return np.stack([X[:, i:i + 10].mean(axis=1) for i in range(X.shape[1] - 9)], axis=1)


def _learners():
    """Each learner as (name, features, model)."""
    wide = np.logspace(-2, 5, 30)
    return [
        ("oracle_window", _window, LinearRegression()),
        ("ridgecv", None, make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))),
        ("ridgecv_wide", None, make_pipeline(StandardScaler(), RidgeCV(alphas=wide))),
        ("pls1", None, PLSRegression(n_components=1)),
        ("mean_pool", _series_mean, LinearRegression()),
        ("ridge_smooth", _moving_averages, RidgeCV(alphas=wide)),
    ]


def _positive(text):
    """An int of at least 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _sizes(text):
    """Comma-separated training sizes, each at least 3 (argparse type):
    RidgeCV's leave-one-out and PLS need a few cases."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated ints: {text!r}") from None
    if min(sizes) < 3:
        raise argparse.ArgumentTypeError(f"each size must be at least 3, got {text!r}")
    return sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=_positive, default=200)
    parser.add_argument("--sizes", type=_sizes, default="30,60,100")
    args = parser.parse_args(argv)
    print("| cases | " + " | ".join(["mean"] + [name for name, _, _ in _learners()]) + " |")
    print("|---" * (2 + len(_learners())) + "|")
    for n in args.sizes:
        rmse = {name: [] for name in ["mean"] + [name for name, _, _ in _learners()]}
        for draw in range(args.draws):
            d = _data.load_noisy(n_train=n, n_test=2000, seed=1000 + draw)
            X, y, Xt, yt = d.X_train[:, :, 0], d.y_train, d.X_test[:, :, 0], d.y_test
            rmse["mean"].append(np.sqrt(np.mean((yt - y.mean()) ** 2)))
            for name, features, model in _learners():
                f = features or (lambda A: A)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # RidgeCV's ill-conditioned grids
                    p = np.ravel(model.fit(f(X), y).predict(f(Xt)))
                rmse[name].append(np.sqrt(np.mean((yt - p) ** 2)))
        mean = np.array(rmse["mean"])
        cells = [f"{mean.mean():.3f}"] + [
            f"{np.mean(v):.3f} ({np.mean(np.array(v) < mean):.0%})"
            for name, v in rmse.items() if name != "mean"
        ]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
