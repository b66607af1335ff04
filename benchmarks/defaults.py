"""Choosing the package's defaults: candidate LSTM configurations over the
development sets, several seeds each.

One command (from the repository root) regenerates the table::

    python benchmarks/defaults.py                         # built-in candidates, 3 seeds
    python benchmarks/defaults.py --configs '[{}, {"patch_size": 16}, {"cell": "gated_memory"}]'
    python benchmarks/defaults.py --configs-file my_configs.json --seeds 5 --datasets Trace,PLAID
    python benchmarks/defaults.py --list                  # print the built-in candidates

A configuration is a dict of estimator keywords applied to LSTMClassifier or
LSTMRegressor (whichever the data set needs) on top of the package's
defaults; ``{}`` is the current default. Data, timing, thread limits, the
per-fit time limit and the input handling (NaN-end padding with
``variable_length=True`` for PLAID) are those of ``accuracy.py``, whose
options ``--cache``, ``--threads``, ``--time-limit``, ``--quick`` and
``--tables`` this script shares.

Output: a Markdown table, rows = configurations, columns = data sets, each
cell mean score ± std over seeds (accuracy; RMSE for regression, lower is
better) and mean fit seconds; then per configuration its mean rank over the
data sets (1 = best; ties share ranks; a failed fit ranks last) and its total
fit seconds. Raw numbers go to ``benchmarks/defaults.json``.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accuracy  # noqa: E402  (sets no state at import)

# The candidates the defaults are chosen from: the package's defaults with one
# network (the "base", first row), each other row changing one thing of it,
# so that the table reads as an ablation; then the defaults themselves (3
# networks averaged) and two ensemble variants. "flip" is the other setting of
# a default that differs between the classifier and the regressor.
BASE = {"n_ensemble": 1}
SINGLE = [
    BASE,
    {**BASE, "pooling": "last"},
    {**BASE, "pooling": "mean"},
    {**BASE, "bidirectional": True},
    {**BASE, "differences": "flip"},
    {**BASE, "instance_norm": None},
    {**BASE, "instance_norm": "replace"},
    {**BASE, "patch_size": 16},
    {**BASE, "hidden_layer_sizes": [64]},
    {**BASE, "hidden_layer_sizes": [32, 32]},
    {**BASE, "max_iter": "flip"},
    {**BASE, "tol": 1e-6},
    {**BASE, "cell": "gated_memory"},
    {**BASE, "cell": "gru"},
]
ENSEMBLES = [{}, {"n_ensemble": 5}, {"bidirectional": True}, {"cell": "gru"}]
BUILTIN = SINGLE + ENSEMBLES

DEFAULT_SETS = ["Coffee", "Trace", "PigCVP", "PLAID", "Tecator", "digits", "motif", "adding"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", help="JSON list of keyword dicts")
    p.add_argument("--configs-file", help="file with a JSON list of keyword dicts")
    p.add_argument("--list", action="store_true", help="print the built-in candidates and exit")
    p.add_argument("--candidates", choices=["all", "single", "ensembles"], default="all",
                   help="which built-in candidates: the one-network ablation, the "
                        "ensembles, or both (default)")
    p.add_argument("--datasets", help="comma-separated subset (default: all series sets)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tables", action="store_true", help="also the 5-fold-CV tables")
    p.add_argument("--quick", action="store_true", help="max_iter=50 unless a config sets it; small sets")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per fit (default 120)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", help="wheel cache directory")
    p.add_argument("--json", default=os.path.join(HERE, "defaults.json"))
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.configs_file:
        with open(args.configs_file) as f:
            args.configs = json.load(f)
    elif args.configs:
        args.configs = json.loads(args.configs)
    else:
        args.configs = {"all": BUILTIN, "single": SINGLE, "ensembles": ENSEMBLES}[args.candidates]
    if not (isinstance(args.configs, list) and all(isinstance(c, dict) for c in args.configs)):
        p.error("configurations must be a JSON list of objects")
    return args


def label(config):
    return json.dumps(config, separators=(",", ":")) if config else "(defaults)"


def ranks(values, lower_better):
    """Average ranks (1 = best); NaN (failed) ranks last."""
    import numpy as np

    v = np.array([np.nan if x is None else x for x in values], float)
    key = np.where(np.isnan(v), np.inf, v if lower_better else -v)
    order = np.argsort(key, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for x in np.unique(key):  # ties share the mean rank
        r[key == x] = r[key == x].mean()
    return r


def table_rows(table, tasks, seeds):
    """The table of a run: header cells and one row of cells per configuration.

    ``table`` maps each configuration's label to its ``results`` per data set,
    ``tasks`` each data set to its task, as in the JSON this script writes.
    Shared by the Markdown printed here and the documentation's tables
    (docs/_ext/results_tables.py).
    """
    import numpy as np

    labels = list(table)
    rank_rows = [ranks([table[lab]["results"][name].get("score") for lab in labels],
                       lower_better=task == "regression")
                 for name, task in tasks.items()]
    mean_rank = np.mean(rank_rows, axis=0) if rank_rows else np.zeros(len(labels))
    header = (["configuration"]
              + [f"{n} ({'acc' if t == 'classification' else 'RMSE'})" for n, t in tasks.items()]
              + ["mean rank", "total fit s"])
    body = []
    for i, lab in enumerate(labels):
        results = table[lab]["results"]
        cells = [accuracy.fmt_cell(results[name], task) for name, task in tasks.items()]
        total = sum(results[name].get("fit_s", 0.0) * seeds for name in tasks)
        body.append([lab] + cells + [f"{mean_rank[i]:.2f}", f"{total:.0f}"])
    return header, body


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print(json.dumps(BUILTIN, indent=1))
        return
    accuracy.set_threads(args.threads)

    import _data

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    pkg, pkg_info = accuracy.import_package()
    if args.datasets:
        sets = [s.strip() for s in args.datasets.split(",") if s.strip()]
    else:
        sets = list(accuracy.QUICK_SETS if args.quick else DEFAULT_SETS)
        if args.tables:
            sets += accuracy.TABLE_SETS
    # accuracy.py's argument namespace drives its runner
    acc = accuracy.parse_args(["--seeds", str(args.seeds), "--threads", str(args.threads)]
                              + (["--quick"] if args.quick else [])
                              + (["--time-limit", str(args.time_limit)] if args.time_limit is not None else [])
                              + (["--quiet"] if args.quiet else []))
    header = {"package": pkg_info, "seeds": args.seeds, "quick": args.quick,
              "time_limit_s": acc.time_limit, "threads": args.threads,
              "defaults": {k: v for k, v in pkg.LSTMClassifier().get_params().items()},
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"# sklearn_gatedmem {pkg_info['commit']} from {pkg_info['path']}; {len(args.configs)} "
          f"configurations x {len(sets)} data sets x {args.seeds} seeds", file=sys.stderr)

    data = {name: _data.load(name, args.cache) for name in sets}
    table = {}  # label -> data set -> result
    for config in args.configs:
        lab = label(config)
        table[lab] = {"config": config, "results": {}}
        acc.params = config
        for name, ds in data.items():
            try:
                res = accuracy.run_model("lstm", ds, acc, pkg, {})
            except Exception as exc:
                msg = f"{type(exc).__name__}: {exc}"
                print(f"#   {name:14s} {lab}: FAILED: {msg}", file=sys.stderr, flush=True)
                res = {"error": msg}
            table[lab]["results"][name] = res
            with open(args.json, "w") as f:
                json.dump({"header": header, "sets": {n: {"task": d.task, "info": d.describe()}
                                                      for n, d in data.items()},
                           "configs": table}, f, indent=1, default=str)

    tasks = {name: ds.task for name, ds in data.items()}
    header, body = table_rows(table, tasks, args.seeds)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([f"`{row[0]}`"] + row[1:]) + " |" for row in body]
    lines += ["", f"{args.seeds} seeds (random_state 0..{args.seeds - 1}); cells: mean ± std "
              "(mean fit seconds); †: a fit hit the time limit; err: failed (see JSON). "
              f"Package {pkg_info['commit']}."]
    print("\n".join(lines))
    print(f"\nResults: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
