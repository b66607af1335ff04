"""Where static values enter the network: the head, the first layer's initial
states, or both (issue 21's choice, made by measurement).

Two generated tasks, 300 training and 300 test cases of 16 steps:

* ``level``: the label is the series' level against a threshold set by an
  "age" (the task of ``test_static_features_gain_where_the_label_needs_both``):
  the static value shifts the decision.
* ``half``: a binary static value says which half of the series counts; the
  label is the sign of that half's mean. The static value changes how the
  series is read over time.

Configurations: the series alone; ``static_features`` into the head, into
the initial states, both; and the static value given as a constant channel
(for reference). Each with the estimators' defaults otherwise, 3 seeds.

Run: ``python benchmarks/static_into.py [hidden]`` (hidden: units, default 32,
the estimator's default).
"""

import json
import sys
import time
import warnings

import numpy as np

from sklearn_gatedmem import LSTMClassifier


def level_task(n, seed, n_steps=16):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_steps))
    age = rng.uniform(20, 80, size=n)
    y = (4 * X.mean(axis=1) + (age - 50) / 10 > 0).astype(int)
    return X, age, y


def half_task(n, seed, n_steps=16):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_steps))
    which = rng.randint(2, size=n)
    half = n_steps // 2
    first, second = X[:, :half].mean(axis=1), X[:, half:].mean(axis=1)
    y = (np.where(which == 1, second, first) > 0).astype(int)
    return X, which.astype(float), y


def run(config, task, seed, hidden):
    X_tr, s_tr, y_tr = task(300, 0)
    X_te, s_te, y_te = task(300, 1)
    params = dict(random_state=seed, hidden_layer_sizes=hidden)
    if config == "series only":
        clf, A_tr, A_te = LSTMClassifier(**params), X_tr, X_te
    elif config == "channel":
        def channel(X, s):
            return np.stack([X, np.repeat(s[:, None], X.shape[1], axis=1)], axis=-1)
        clf, A_tr, A_te = LSTMClassifier(**params), channel(X_tr, s_tr), channel(X_te, s_te)
    else:
        clf = LSTMClassifier(static_features=[0], static_into=config, **params)
        A_tr, A_te = np.hstack([s_tr[:, None], X_tr]), np.hstack([s_te[:, None], X_te])
    start = time.perf_counter()
    clf.fit(A_tr, y_tr)
    fit_s = time.perf_counter() - start
    return clf.score(A_te, y_te), fit_s


def main():
    hidden = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    warnings.simplefilter("ignore")
    configs = ["series only", "head", "initial_state", "both", "channel"]
    results = {}
    for task in (level_task, half_task):
        for config in configs:
            runs = [run(config, task, seed, hidden) for seed in range(3)]
            acc = [a for a, _ in runs]
            times = [t for _, t in runs]
            results[f"{task.__name__} / {config}"] = dict(accuracy=acc, fit_s=times)
            print(f"{task.__name__:10s} {config:14s} accuracy {np.mean(acc):.3f} "
                  f"({', '.join(f'{a:.3f}' for a in acc)})  fit {np.mean(times):.1f} s",
                  flush=True)
    with open(f"benchmarks/results/static_into_h{hidden}.json", "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
