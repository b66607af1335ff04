"""One L-BFGS evaluation on a Dask cluster against the local one, and the
client's memory in a fit on a dask array (docs/user_guide/dask.rst, "One fit on a Dask cluster").

    pip install -e ".[dask,benchmark]" && python benchmarks/cluster.py
    python benchmarks/cluster.py --sizes 5000 --reps 1 --rss-n 20000   # smoke run

The standard workload of docs/benchmarks.rst: sequences of 32 steps x 8
features, float64, 32 hidden units, a binary LSTMClassifier reading the raw steps
(``instance_norm=None``, as ``run.py``). X is generated on
the workers (``dask.array.random``, blocks of ``--rows`` sequences).

* **eval**: per size, the seconds of one evaluation of the objective exactly
  as fit calls it: on a ``LocalCluster`` of ``--workers`` processes of one
  thread each (``_dask.Blocks.objective``), and locally on the same data
  computed into this process (``_objective.loss_grad``, as
  ``benchmarks/run.py`` times it) with 1 BLAS thread and with as many as
  workers. The cluster runs first, so that this process's peak resident
  memory (VmHWM) during it is that of a fit on the cluster.
* **overhead**: the same on blocks of 16 sequences: what an evaluation costs
  besides the arithmetic, for 2 and for 16 blocks.
* **bytes**: per evaluation, the bytes the workers sent each other (their
  ``transfer_outgoing_bytes_total``) and the bytes between client and
  workers (theta to every worker, one loss and gradient back).
* **rss**: the issue's acceptance check, in a fresh interpreter: a whole fit
  (``max_iter=2``) on a 410 MB dask array generated on the workers; the growth
  of the client's VmHWM over the fit.

Raw numbers go to ``benchmarks/results/cluster.json``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

N_STEPS, N_FEATURES, HIDDEN = 32, 8, 32


def _peak_rss_mb():
    """VmHWM, the high-water mark of this process's resident memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cluster(n_workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return cluster, Client(cluster)


def _dask_data(n, rows, seed=0):
    """X (n, 32, 8) and binary y, generated on the workers, blocks of ``rows``."""
    import dask.array as da

    X = da.random.RandomState(seed).standard_normal(
        (n, N_STEPS, N_FEATURES), chunks=(rows, N_STEPS, N_FEATURES)
    )
    y = (X[:, :3, 0].sum(axis=1) > 0).astype(int)
    return X, y


def _worker_bytes_sent(client):
    sent = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    return sum(sent.values())


def _worker_cpu_s(client):
    return sum(client.run(time.process_time).values())


def cluster_eval(client, X, y, reps):
    """Seconds per evaluation of the objective a fit on the cluster uses."""
    from sklearn_gatedmem import LSTMClassifier, _dask
    from sklearn_gatedmem._memory import plan
    from sklearn_gatedmem._params import initialize

    # the network of run.py's project_setup: the raw steps (no instance_norm)
    est = LSTMClassifier(hidden_layer_sizes=HIDDEN, instance_norm=None, n_ensemble=1,
                         random_state=0)
    t0 = time.perf_counter()
    with _dask.prepared(est, X, y, None) as (blocks, _, _, _, network, _):
        prepare_s = time.perf_counter() - t0
        chunk = plan(network, blocks.shape[0], blocks.shape[1], blocks.dtype.itemsize,
                     "auto").chunk_rows
        fun = blocks.objective(1e-4, network, chunk)
        theta = initialize(network.layout, network.cell, np.random.RandomState(0))
        fun(theta)  # the workers' buffers, as a fit's first evaluation
        sent, cpu, seconds = _worker_bytes_sent(client), _worker_cpu_s(client), []
        for _ in range(reps):
            t0 = time.perf_counter()
            loss, grad = fun(theta)
            seconds.append(time.perf_counter() - t0)
        worker_cpu = (_worker_cpu_s(client) - cpu) / reps
        worker_bytes = (_worker_bytes_sent(client) - sent) / reps
        n_workers = len(client.scheduler_info()["workers"])
        return {
            "n_blocks": len(blocks.parts),
            "prepare_s": prepare_s,
            "eval_s": seconds,
            "eval_median_s": statistics.median(seconds),
            "workers_cpu_s": worker_cpu,  # summed over the workers, per evaluation
            "worker_to_worker_bytes": worker_bytes,
            # theta to every worker; one loss and gradient back
            "client_bytes": theta.nbytes * n_workers + grad.nbytes + 8,
            "n_params": theta.size,
        }


def local_eval(X, y, reps, threads):
    from run import project_eval, project_setup
    from threadpoolctl import threadpool_limits

    s = project_setup(X, y, HIDDEN)
    with threadpool_limits(limits=threads, user_api="blas"):
        project_eval(s)
        seconds, cpu = [], time.process_time()
        for _ in range(reps):
            t0 = time.perf_counter()
            project_eval(s)
            seconds.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu) / reps
    return {"threads": threads, "eval_s": seconds, "eval_median_s": statistics.median(seconds),
            "cpu_s": cpu}


def rss_child(n, rows, n_workers):
    """In a fresh interpreter: a whole fit on a dask array; client VmHWM."""
    from sklearn_gatedmem import LSTMClassifier

    cluster, client = _cluster(n_workers)
    with cluster, client:
        X, y = _dask_data(n, rows)
        est = LSTMClassifier(
            hidden_layer_sizes=HIDDEN, instance_norm=None, max_iter=2, tol=0.0,
            n_ensemble=1, random_state=0,
        )
        est.get_params()
        before_peak, before = _peak_rss_mb(), _rss_mb()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(X, y)
            fit_s = time.perf_counter() - t0
            proba = est.predict_proba(X)  # lazy: a dask array
            first = proba[:5].compute()
        print(json.dumps({
            "n": n, "rows_per_block": rows, "x_mb": X.nbytes / 2**20,
            "client_rss_before_fit_mb": before, "client_peak_before_fit_mb": before_peak,
            "client_peak_after_fit_mb": _peak_rss_mb(),
            "client_peak_growth_mb": _peak_rss_mb() - before_peak,
            "fit_s": fit_s, "n_iter": int(est.n_iter_), "proba_first_rows": first.tolist(),
        }))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--rows", type=int, default=25_000, help="sequences per block")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--local-threads", default="1",
        help="BLAS threads of the local evaluations, comma-separated (on a shared "
        "machine more threads than free cores make them many times slower)",
    )
    parser.add_argument("--rss-n", type=int, default=200_000, help="0 skips the rss check")
    parser.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "cluster.json"))
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        return rss_child(args.rss_n, args.rows, args.workers)

    sizes = [int(s) for s in args.sizes.split(",")]
    results = {"machine": f"{platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
               "workers": args.workers, "rows_per_block": args.rows, "eval": [],
               "overhead": []}
    cluster, client = _cluster(args.workers)
    with cluster, client:
        base_peak = _peak_rss_mb()
        for n_blocks in (2, 16):  # fixed cost: blocks of 16 sequences
            X, y = _dask_data(16 * n_blocks, 16)
            row = cluster_eval(client, X, y, max(5, args.reps))
            results["overhead"].append(row)
            print(f"overhead, {n_blocks} blocks of 16: {row['eval_median_s'] * 1e3:.1f} ms",
                  flush=True)
        for n in sizes:
            X, y = _dask_data(n, args.rows)
            row = {"n": n, "cluster": cluster_eval(client, X, y, args.reps)}
            row["client_peak_growth_mb"] = _peak_rss_mb() - base_peak
            results["eval"].append(row)
            print(f"N={n}: cluster {row['cluster']['eval_median_s']:.3f} s", flush=True)
        local = {n: client.gather(client.compute(list(_dask_data(n, args.rows)))) for n in sizes}
    for row in results["eval"]:
        X, y = local[row["n"]]
        threads = sorted({int(t) for t in args.local_threads.split(",")})
        row["local"] = [local_eval(X, y, args.reps, t) for t in threads]
        print(f"N={row['n']}: local " + ", ".join(
            f"{r['threads']} thread(s) {r['eval_median_s']:.3f} s" for r in row["local"]),
            flush=True)
    del local
    if args.rss_n:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", "--rss-n", str(args.rss_n),
             "--rows", str(args.rows), "--workers", str(args.workers)],
            capture_output=True, text=True, check=True,
        )
        results["rss"] = json.loads(out.stdout.strip().splitlines()[-1])
    print_tables(results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


def print_tables(results):
    w = results["workers"]
    print(f"\n{results['machine']}; LocalCluster of {w} worker processes x 1 thread, "
          f"blocks of {results['rows_per_block']} sequences\n")
    threads = [r["threads"] for r in results["eval"][0]["local"]]
    print("| N | blocks | cluster s/eval (workers' CPU s) | "
          + " | ".join(f"local s/eval, {t} thread(s) (CPU s) | cluster / local" for t in threads)
          + " | worker-to-worker bytes/eval | client bytes/eval | client peak growth MB |")
    print("|---" * (6 + 2 * len(threads)) + "|")
    for row in results["eval"]:
        c = row["cluster"]
        local = " | ".join(
            f"{r['eval_median_s']:.3f} ({r.get('cpu_s', np.nan):.2f}) | "
            f"{c['eval_median_s'] / r['eval_median_s']:.2f}"
            for r in row["local"]
        )
        print(f"| {row['n']:,} | {c['n_blocks']} | {c['eval_median_s']:.3f} "
              f"({c.get('workers_cpu_s', np.nan):.2f}) | {local} | "
              f"{c['worker_to_worker_bytes']:,.0f} | {c['client_bytes']:,} | "
              f"{row['client_peak_growth_mb']:.0f} |")
    print("\nFixed cost of an evaluation (blocks of 16 sequences):")
    for row in results["overhead"]:
        print(f"  {row['n_blocks']} blocks: {row['eval_median_s'] * 1e3:.1f} ms, workers' "
              f"CPU {row.get('workers_cpu_s', np.nan) * 1e3:.1f} ms "
              f"(runs {', '.join(f'{s * 1e3:.1f}' for s in row['eval_s'])} ms)")
    if "rss" in results:
        r = results["rss"]
        print(f"\nFit on a {r['x_mb']:.0f} MB dask array generated on the workers "
              f"({r['n']:,} sequences, max_iter=2, {r['fit_s']:.1f} s): client peak RSS "
              f"{r['client_peak_before_fit_mb']:.0f} -> {r['client_peak_after_fit_mb']:.0f} MB,"
              f" growth {r['client_peak_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
