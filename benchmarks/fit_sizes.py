"""Fit time of the default LSTMClassifier by the size of the data, on generated series.

The development sets are small (28 to 898 training series). This prints the
fit time of the defaults, and the patch size they chose, on generated data of
other sizes: Gaussian noise of ``T`` steps and ``d`` features, ``k`` classes
drawn at random, class 1 with a bump of +1 over 10 steps at a third of the
series (the scores mean nothing; the time does). 2 BLAS threads by default.

One command (from the repository root)::

    python benchmarks/fit_sizes.py [--threads 2]
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

# (n_series, n_steps, n_features, n_classes)
SIZES = [(100, 2000, 1, 2), (500, 500, 1, 5), (1000, 100, 1, 3), (4000, 100, 1, 7),
         (300, 150, 3, 4), (2000, 50, 12, 10)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from sklearn_gatedmem import LSTMClassifier

    rng = np.random.RandomState(0)
    for n, T, d, k in SIZES:
        X = rng.normal(size=(n, T, d))
        y = rng.randint(k, size=n)
        X[y == 1, T // 3 : T // 3 + 10] += 1.0
        with threadpool_limits(args.threads):
            start = time.perf_counter()
            est = LSTMClassifier(random_state=0).fit(X, y)
            seconds = time.perf_counter() - start
        print(f"{n:5d} series x {T:5d} steps x {d:2d} features, {k:2d} classes: "
              f"patch_size_ {est.patch_size_:3d}, fit {seconds:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
