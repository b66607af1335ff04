"""A/B timing of one loss+gradient evaluation between two package trees.

Usage::

    python benchmarks/core_ab.py OLD_ROOT NEW_ROOT [--rounds 5] [--repeats 7] [--cases ...] [--dtypes ...]

Each round runs every case once per tree, each in a fresh process, the trees
taking turns (A B, then B A) so that a burst of load from the other users of
the machine hits both alike. A process builds the case's problem (same seed,
same weights in both trees), evaluates ``_objective.loss_grad`` once to
allocate its work buffers, then times ``repeats`` further evaluations with
one BLAS thread (as ensemble members run) and reports the best; the
activation method is fixed (``SKLEARN_GATEDMEM_ACTIVATION=tanh``) so that
both trees run the same arithmetic. Reported per case: the best and the
median over rounds of each tree's best, and their ratios new/old, plus the
largest relative difference of the gradients (float64: rounding; float32:
its rounding against the old tree's).

Cases (n_samples x n_steps x n_features, 32 hidden units, ``pooling="max"``,
the default): the watch-like wide input of the default's patches, a middle
one, a tiny one, a long narrow one, a bidirectional one and one of unequal
lengths; each in float64 and float32.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = {
    # name: (n_samples, n_steps, n_features, options)
    "30x32x500": (30, 32, 500, {}),
    "100x32x64": (100, 32, 64, {}),
    "20x24x1": (20, 24, 1, {}),
    "600x60x4": (600, 60, 4, {}),
    "200x32x8 bidir": (200, 32, 8, {"n_directions": 2}),
    "100x50x3 unequal": (100, 50, 3, {"unequal": True}),
    "898x1x128 whole": (898, 1, 128, {}),  # digits read whole (8 x 8, appended z-scores)
    "30x32x500 gru": (30, 32, 500, {"cell": "gru"}),
    "30x32x500 gated_memory": (30, 32, 500, {"cell": "gated_memory"}),
}

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, ROOT)
from threadpoolctl import threadpool_limits
from sklearn_gatedmem import _objective, _params
from sklearn_gatedmem._memory import plan
from sklearn_gatedmem._network import Network

n, T, D, opts, dtype, repeats = ARGS
rng = np.random.RandomState(0)
X = (rng.normal(size=(n, T, D)) * 2 + 1).astype(dtype)
lengths = None
if opts.get("unequal"):
    lengths = np.sort(rng.randint(T // 4, T + 1, size=n))[::-1].copy()
    lengths[0] = T
    X[np.arange(T)[None, :] >= lengths[:, None]] = np.nan
Y = np.eye(3)[rng.randint(3, size=n)]
network = Network(
    cell=opts.get("cell", "lstm"), hidden=(32,), n_directions=opts.get("n_directions", 1),
    pooling="max", patch_size=1, differences=False, n_features=D, n_outputs=3,
    out_activation="softmax", x_mean=np.ones(D), x_scale=2 * np.ones(D),
)
theta = _params.initialize(network.layout, network.cell, np.random.RandomState(1))
theta += 0.1 * rng.normal(size=theta.shape)
sw = np.ones(n)
chunk = plan(network, n, T, np.dtype(dtype).itemsize).chunk_rows
ws = {}
with threadpool_limits(1):
    loss, grad = _objective.loss_grad(theta, X, Y, sw, 1e-3, network, chunk, ws, lengths)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _objective.loss_grad(theta, X, Y, sw, 1e-3, network, chunk, ws, lengths)
        best = min(best, time.perf_counter() - start)
print(json.dumps({"best": best, "loss": loss, "grad": grad.tolist()}))
"""


def run(root, case, dtype, repeats):
    n, T, D, opts = CASES[case]
    code = CHILD.replace("ROOT", repr(os.path.abspath(root))).replace(
        "ARGS", repr((n, T, D, opts, dtype, repeats)))
    env = dict(os.environ, SKLEARN_GATEDMEM_ACTIVATION="tanh", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.path.abspath(root))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--dtypes", nargs="*", default=["float64", "float32"])
    args = parser.parse_args()
    import numpy as np

    print(f"{'case':<24} {'dtype':<8} {'old best':>9} {'new best':>9} {'ratio':>6} "
          f"{'old med':>8} {'new med':>8} {'ratio':>6} {'grad rel diff':>13}")
    for case in args.cases:
        for dtype in args.dtypes:
            times = {"old": [], "new": []}
            grads = {}
            for r in range(args.rounds):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for tree in order:
                    res = run(getattr(args, tree), case, dtype, args.repeats)
                    times[tree].append(res["best"])
                    grads[tree] = np.array(res["grad"])
            diff = np.linalg.norm(grads["new"] - grads["old"]) / np.linalg.norm(grads["old"])
            bo, bn = min(times["old"]), min(times["new"])
            mo, mn = statistics.median(times["old"]), statistics.median(times["new"])
            print(f"{case:<24} {dtype:<8} {bo * 1e3:8.2f}m {bn * 1e3:8.2f}m {bn / bo:6.2f} "
                  f"{mo * 1e3:7.2f}m {mn * 1e3:7.2f}m {mn / mo:6.2f} {diff:13.1e}", flush=True)


if __name__ == "__main__":
    main()
