"""Unequal lengths: one evaluation over chunks of similar lengths
(``_objective.chunk_plan``) against every sequence run to the longest.

The development set PLAID (537 series of 100 to 1,344 steps, read as the
default classifier reads them: patches of 42 steps with their z-scores) is
evaluated both ways with the same weights, in one process, side by side::

    python benchmarks/unequal_lengths.py                 # this machine
    python benchmarks/unequal_lengths.py --isa avx2      # AVX2 emulated

``--isa avx2`` reruns the script with NumPy's AVX-512 dispatch and OpenBLAS's
kernels capped as ``run.py`` does (``ISA_CONFIGS``), and prints what NumPy
then reports, so that the emulation is seen to take effect.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_CHILD = "SKLEARN_GATEDMEM_BENCH_EMULATED"  # set in the emulated rerun


def measure(threads, reps):
    import warnings

    import numpy as np
    from threadpoolctl import threadpool_limits

    import _data
    from sklearn_gatedmem import LSTMClassifier, _objective

    ds = _data.load("PLAID")
    X = _data.nan_pad(ds.X_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LSTMClassifier(n_ensemble=1, max_iter=1, variable_length=True,
                             random_state=0).fit(X, ds.y_train)
    network = est._network
    Xn, lengths = est._network_input(est._validate_X(X, reset=False)[0], network)
    order = np.argsort(-lengths, kind="stable")  # as fit orders the rows
    Xn, lengths = np.nan_to_num(Xn[order]), lengths[order]
    theta = np.concatenate([v.ravel() for v in est.coefs_.values()])
    Y = np.eye(len(est.classes_))[np.searchsorted(est.classes_, ds.y_train[order])]
    sw = np.ones(len(Y))
    n = len(Y)

    def evaluate(plan):
        saved = _objective.chunk_plan
        if plan == "one chunk":  # every sequence over all steps, padding masked
            _objective.chunk_plan = lambda n_samples, n_steps, c, L=None: [
                (slice(0, n_samples), n_steps)
            ]
        try:
            return _objective.loss_grad(theta, Xn, Y, sw, 1.0, network, n, ws[plan], lengths)
        finally:
            _objective.chunk_plan = saved

    ws = {"one chunk": {}, "chunk plan": {}}
    with threadpool_limits(threads):
        (l1, g1), (l2, g2) = evaluate("one chunk"), evaluate("chunk plan")
        times = {}
        for plan in ws:
            runs = []
            for _ in range(reps):
                start = time.perf_counter()
                evaluate(plan)
                runs.append(time.perf_counter() - start)
            times[plan] = float(np.median(runs))
    # the dispatch targets NumPy uses here, as np.show_runtime() lists them
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    found = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    steps = sum(len(range(*rows.indices(n))) * T
                for rows, T in _objective.chunk_plan(n, Xn.shape[1], n, lengths))
    from threadpoolctl import threadpool_info

    blas = sorted({i.get("architecture") or "" for i in threadpool_info()} - {""})
    print(f"NumPy SIMD found: {' '.join(found)}; BLAS kernels: {' '.join(blas)}")
    print(f"sample-steps run: one chunk {n * Xn.shape[1]}, chunk plan {steps}, "
          f"real {int(lengths.sum())}")
    print(f"same objective: loss rel. diff {abs(l1 - l2) / abs(l1):.1e}, "
          f"gradient max abs diff {np.abs(g1 - g2).max():.1e}")
    print(f"one evaluation, median of {reps}, {threads} threads: one chunk "
          f"{times['one chunk'] * 1e3:.1f} ms, chunk plan {times['chunk plan'] * 1e3:.1f} ms, "
          f"ratio {times['chunk plan'] / times['one chunk']:.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--isa", choices=["native", "avx2"], default="native")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=9)
    args = p.parse_args(argv)
    if args.isa == "avx2" and not os.environ.get(_CHILD):
        from run import ISA_CONFIGS

        env = {**os.environ, **ISA_CONFIGS["avx2"], _CHILD: "1"}
        cmd = [sys.executable, __file__, "--isa", "avx2", "--threads", str(args.threads),
               "--reps", str(args.reps)]
        sys.exit(subprocess.call(cmd, env=env))
    print(f"# {args.isa}")
    measure(args.threads, args.reps)


if __name__ == "__main__":
    main()
