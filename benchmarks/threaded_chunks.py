"""Probe: a chunk's sequences split over Python threads, against the core as it is.

NumPy's ufuncs run on one thread, so the cell's elementwise work (the gates,
their products and sums) uses one core while BLAS uses them all. The only way
to spread it from NumPy is to run parts of the samples in Python threads
(NumPy releases the GIL inside each call). This script measures that lever,
not built into the package: for each workload of ``run.py`` and each dtype,
``_objective.decision`` and ``_objective.loss_grad`` on all sequences with
``--threads`` BLAS threads, against the same calls on ``--threads`` equal
parts of the sequences, each in its own Python thread with one BLAS thread.
Medians of ``--reps`` back-to-back runs; the ratio is threaded / as is.

One command (from the repository root)::

    python benchmarks/threaded_chunks.py                 # this machine as it is
    python benchmarks/threaded_chunks.py --isa avx2      # AVX2 emulated (run.py's settings)

Measured on 2026-12-02 (2 threads; docs/benchmarks.rst): the threads help
where a step's blocks are large (AVX2 ``medium`` float64 prediction 187 ->
115 ms) and lose where they are small (AVX-512 ``small`` float32 prediction
1.3 -> 3.4 ms): between calls the threads queue for the interpreter.
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (the workloads and the project's own setup)


def median_ms(f, reps):
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(run.WORKLOADS))
    p.add_argument("--threads", type=int, default=run.THREADS)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--isa", choices=list(run.ISA_CONFIGS), default="native")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.child and run.ISA_CONFIGS[args.isa]:
        env = dict(os.environ)
        for key, value in run.ISA_CONFIGS[args.isa].items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        argv = [a for a in (argv if argv is not None else sys.argv[1:])]
        subprocess.run([sys.executable, __file__, *argv, "--child"], env=env, check=True)
        return

    from threadpoolctl import threadpool_limits

    from sklearn_gatedmem import _objective

    info = run.machine(args.isa)
    print("Machine: " + run.describe(info), flush=True)
    k = args.threads
    pool = ThreadPoolExecutor(k)
    print(f"{'workload':8s} {'dtype':8s} {'predict ms as is -> threaded':>30s}"
          f" {'ratio':>6s} {'eval ms as is -> threaded':>28s} {'ratio':>6s}")
    for name in args.workloads.split(","):
        n, t, d, h, nd = run.WORKLOADS[name]
        for dtype in run.DTYPES:
            X, y = run.make_data(n, t, d, dtype)
            s = run.project_setup(X, y, h, nd)
            theta, net, chunk, Y, sw = s["theta"], s["spec"], s["chunk"], s["Y"], s["sw"]
            parts = [slice(j * n // k, (j + 1) * n // k) for j in range(k)]

            def predict_threaded():
                futures = [pool.submit(_objective.decision, theta, X[r], net, chunk)
                           for r in parts]
                return [f.result() for f in futures]

            def eval_threaded():
                futures = [pool.submit(_objective.loss_grad, theta, X[r], Y[r], sw[r],
                                       1e-4, net, chunk) for r in parts]
                return [f.result() for f in futures]

            with threadpool_limits(k):
                p_as_is = median_ms(lambda: _objective.decision(theta, X, net, chunk), args.reps)
                e_as_is = median_ms(
                    lambda: _objective.loss_grad(theta, X, Y, sw, 1e-4, net, chunk), args.reps
                )
            with threadpool_limits(1):
                p_thr = median_ms(predict_threaded, args.reps)
                e_thr = median_ms(eval_threaded, args.reps)
            print(f"{name:8s} {dtype:8s} {p_as_is:13.1f} -> {p_thr:13.1f} {p_thr / p_as_is:6.2f}"
                  f" {e_as_is:11.1f} -> {e_thr:13.1f} {e_thr / e_as_is:6.2f}", flush=True)


if __name__ == "__main__":
    main()
