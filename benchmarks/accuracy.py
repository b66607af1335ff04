"""Accuracy benchmark: sklearn_gatedmem's LSTMs against quick strong baselines
on the development series (and tables).

One command (from the repository root)::

    python benchmarks/accuracy.py                       # all series sets, all models
    python benchmarks/accuracy.py --tables              # also iris/wine/breast_cancer/diabetes, 5-fold CV
    python benchmarks/accuracy.py --quick               # small sets, capped LSTM fits, ~ a few min
    python benchmarks/accuracy.py --datasets Trace,Coffee --models lstm,gated \\
        --params '{"patch_size": 16}' --seeds 3 --json out.json

The package is imported from ``PYTHONPATH`` when set (e.g.
``PYTHONPATH=/work/main`` for a live tree), else from this checkout.

Models (``--models``, comma-separated):

``lstm``        LSTMClassifier / LSTMRegressor with the package defaults
``gated``       the same with ``cell="gated_memory"``
``ed``          1-NN Euclidean (classification only)
``dtw``         1-NN DTW, full window (classification only; ``_dtw.py``:
                numba if importable, else a slow NumPy version for equal lengths)
``minirocket``  aeon's MiniRocketClassifier / MiniRocketRegressor (if aeon imports)
``mlp``         MLPClassifier / MLPRegressor on the flattened series, standardised
``ridge``       RidgeCV on the flattened, standardised series (regression only)
``mean``        the training mean (regression only)
``logreg``      LogisticRegression, standardised (tables only)

``--params`` (JSON) overrides estimator keywords of ``lstm`` and ``gated`` as
is (``gated`` keeps ``cell="gated_memory"`` unless ``--params`` sets
``cell``). ``--seeds N`` fits the LSTMs with ``random_state`` 0..N-1 and
reports mean ± std; every other model is fitted once (random_state 0).

Tables go to every model as 2-D arrays; the baselines standardise them
column by column (StandardScaler in a pipeline) and MLP uses L-BFGS; the
LSTMs read them the user guide's way for tables (``TABLE_RECIPE``: one step of all
the features, ``n_steps=1``, a stronger penalty, one network), scaling them
themselves.

Scores: test accuracy (classification), test RMSE (regression, lower is
better); tables: mean over 5-fold CV (stratified, shuffled, random_state 0).
Each fit and each predict is timed separately (wall clock, ``perf_counter``),
BLAS / OpenMP / numba limited to ``--threads`` (2). A fit exceeding
``--time-limit`` seconds (default 120) is interrupted (SIGALRM ->
KeyboardInterrupt, which the estimator turns into "keep the best weights so
far") and marked with a dagger: its score is the capped model's.

On the UCR sets (Coffee, Trace, PigCVP, PLAID) 1-NN ED and DTW compare
z-normalised series (each series, each channel, to mean 0 and std 1 over its
own length): the UCR archive's convention for its published 1-NN figures (PigCVP's raw values are not normalised: 1-NN ED reads
0.139 raw and UCR's 0.082 z-normalised). ``--no-znorm`` compares the raw
series. The other models get the series as given (the LSTMs standardise
their inputs themselves; MLP and Ridge through a StandardScaler).

Unequal lengths (PLAID): the LSTMs get NaN-end-padded ``(n, T_max, 1)`` arrays
with ``variable_length=True``; 1-NN DTW gets the raw series; 1-NN ED, MLP,
Ridge and MiniRocket (which needs equal length in aeon) get every series
linearly resampled to the longest length (aeon's ``Resizer``; UCR's own
"adjusted" copy of such sets pads the end with low-amplitude noise instead,
which for a 1-NN ED mostly compares padding). ``--unequal pad`` zero-pads
the end instead.

Learning curves (``--curves``): every set of ``CURVE_SETS`` (the series sets
above, watch, MinimalChinatown, MinimalGasPrices, the generated noisy
regression and the generated templates) at full size and, where its training set is larger, cut to 30
and 60 cases (``_data.subsample``, ``--draws`` 5 draws), the test set whole.
Each (set, size, draw, model) result is cached as it is measured in
``results/curves/<tag>.json`` (the LSTM's, ``--tag`` lstm by default) or
``results/curves/baselines.json``, so a run resumes where it stopped.
``--render-curves`` prints their table; the documentation's Benchmarks page
renders the same table (``curves_rows``) at build time::

    python benchmarks/accuracy.py --curves --models lstm          # the defaults
    python benchmarks/accuracy.py --curves --models ed,dtw,minirocket,mlp,ridge,mean
    python benchmarks/accuracy.py --render-curves

MiniRocket and DTW need aeon / numba. When they do not import here, a second
interpreter that has them can run just those models: ``--aux-python
/root/venv-aeon/bin/python`` (or ``$SKLEARN_GATEDMEM_BENCH_AUX_PYTHON``);
else their cells read "n/a". Wheels with the data are cached in ``--cache``
(or ``$SKLEARN_GATEDMEM_BENCH_CACHE``; default
``~/.cache/sklearn_gatedmem_benchmarks``) and fetched with ``pip download``
when missing.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SERIES_SETS = ["Coffee", "Trace", "PigCVP", "PLAID", "Tecator", "digits", "motif", "adding"]
# --curves: every development series set at full size and, when its training
# set is larger, cut to CURVE_SIZES cases (issue 19)
CURVE_SETS = SERIES_SETS + ["watch", "MinimalChinatown", "MinimalGasPrices", "noisy",
                           "templates"]
CURVE_SIZES = (30, 60)
CURVE_MODELS = ["lstm", "ed", "dtw", "minirocket", "mlp", "ridge", "mean"]
CURVES_DIR = os.path.join(HERE, "results", "curves")
# the README's generated table lies between these lines (--render-curves --readme)
README_MARKERS = ("<!-- curves-table: python benchmarks/accuracy.py --render-curves "
                  "--sizes full --readme README.md -->", "<!-- /curves-table -->")
QUICK_SETS = ["Coffee", "Trace", "Tecator", "digits", "motif", "adding"]
TABLE_SETS = ["iris", "wine", "breast_cancer", "diabetes"]
ALL_MODELS = ["lstm", "gated", "ed", "dtw", "minirocket", "mlp", "ridge", "mean", "logreg"]
LSTM_MODELS = ("lstm", "gated")
LABELS = {
    "lstm": "LSTM", "gated": "LSTM gated_memory", "ed": "1-NN ED", "dtw": "1-NN DTW",
    "minirocket": "MiniRocket", "mlp": "MLP", "ridge": "RidgeCV", "mean": "mean",
    "logreg": "LogReg",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", help="comma-separated subset (default: all series sets)")
    p.add_argument("--models", help=f"comma-separated subset of {','.join(ALL_MODELS)}")
    p.add_argument("--params", default="{}", help="JSON keyword overrides for the LSTM estimators")
    p.add_argument("--seeds", type=int, default=1, help="LSTM fits with random_state 0..N-1")
    p.add_argument("--tables", action="store_true", help="also the 5-fold-CV tables")
    p.add_argument("--tables-only", action="store_true", help="only the tables")
    p.add_argument("--quick", action="store_true",
                   help="small sets only, LSTM max_iter=50, time limit 60 s")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds per LSTM/MLP fit before it is interrupted (default 120; 60 with --quick; 0 = none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unequal", choices=["resample", "pad"], default="resample",
                   help="how ED/MLP/Ridge/MiniRocket see unequal-length series")
    p.add_argument("--no-znorm", dest="znorm", action="store_false",
                   help="1-NN ED/DTW on the raw series (default: each series z-normalised)")
    p.add_argument("--cache", help="wheel cache directory")
    p.add_argument("--aux-python", default=os.environ.get("SKLEARN_GATEDMEM_BENCH_AUX_PYTHON"),
                   help="interpreter with aeon/numba for minirocket/dtw when not importable here")
    p.add_argument("--json", default=os.path.join(HERE, "accuracy.json"), help="results file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--curves", action="store_true",
                   help="learning curves: CURVE_SETS at full size and cut to 30 / 60 cases "
                   "(--draws draws), one cached record per cell in --cells (resumable)")
    p.add_argument("--sizes", default="full,30,60", help="--curves sizes (full and/or ints)")
    p.add_argument("--draws", type=int, default=5, help="--curves draws per cut size")
    p.add_argument("--tag", default="lstm",
                   help="--curves: the name the lstm cells are cached under (e.g. a candidate's "
                   "with --params); lstm: the package defaults, results/curves/lstm.json")
    p.add_argument("--cells", default=None,
                   help="--curves cell cache (default results/curves/<tag or baselines>.json)")
    p.add_argument("--redo", action="store_true", help="--curves: refit cached cells")
    p.add_argument("--render-curves", action="store_true",
                   help="merge results/curves/*.json and print the learning-curve table as "
                   "Markdown (the docs' Benchmarks page renders the same table); runs nothing")
    p.add_argument("--curve-tags", default="lstm",
                   help="--render-curves: lstm tags shown as columns (comma-separated)")
    p.add_argument("--readme", metavar="PATH",
                   help="--render-curves: write the table into PATH between the lines "
                   f"{README_MARKERS[0]!r} and {README_MARKERS[1]!r} instead of printing it "
                   "(the README's table: --render-curves --sizes full --readme README.md)")
    p.add_argument("--from-json", help="comma-separated result files: merge them (later files "
                   "win per data set x model) and print the table; runs nothing")
    args = p.parse_args(argv)
    args.params = json.loads(args.params)
    if not isinstance(args.params, dict):
        p.error("--params must be a JSON object")
    if args.time_limit is None:
        args.time_limit = 60.0 if args.quick else 120.0
    return args


def set_threads(n):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = str(n)


# everything below imports numpy: set_threads must run first (see main)


def import_package():
    """sklearn_gatedmem from PYTHONPATH when it is there, else this checkout."""
    try:
        import sklearn_gatedmem  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.dirname(HERE))
    import sklearn_gatedmem

    src = os.path.dirname(os.path.dirname(os.path.abspath(sklearn_gatedmem.__file__)))
    try:
        commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--", "sklearn_gatedmem"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit += "+dirty" if dirty else ""
    except Exception:
        commit = "?"
    return sklearn_gatedmem, {"path": src, "commit": commit,
                              "version": getattr(sklearn_gatedmem, "__version__", "?"),
                              "isa": instruction_set()}


def instruction_set():
    """"avx512" when NumPy dispatches AVX-512 (X86_V4) and every BLAS has an
    AVX-512 kernel, "avx2" when neither does, else what each has (an
    emulation that took effect only in part): run.py's ``--isa avx2``
    environment emulates an AVX2 machine on an AVX-512 one."""
    import threadpoolctl
    from numpy._core._multiarray_umath import __cpu_features__
    from run import AVX512_BLAS_KERNELS

    numpy_512 = bool(__cpu_features__.get("X86_V4"))
    kernels = {(lib.get("architecture") or "?").lower()
               for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"}
    if numpy_512 and kernels <= set(AVX512_BLAS_KERNELS):
        return "avx512"
    if not numpy_512 and not kernels & set(AVX512_BLAS_KERNELS):
        return "avx2"
    return f"numpy {'X86_V4' if numpy_512 else 'no X86_V4'}, BLAS {sorted(kernels)}"


class TimeLimit:
    """Interrupt the block after ``seconds`` with KeyboardInterrupt (SIGALRM)."""

    def __init__(self, seconds):
        self.seconds, self.fired = seconds, False

    def _handler(self, signum, frame):
        self.fired = True
        raise KeyboardInterrupt

    def __enter__(self):
        import signal

        if self.seconds and self.seconds > 0:
            self._old = signal.signal(signal.SIGALRM, self._handler)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        import signal

        if self.seconds and self.seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False


# -- models ---------------------------------------------------------------------


def applicable(model, ds):
    clf = ds.task == "classification"
    if ds.kind == "table":
        return model in ("lstm", "gated", "mlp") or (model == "logreg" and clf) or (
            model in ("ridge", "mean") and not clf)
    if model in ("ed", "dtw"):
        return clf
    if model in ("ridge", "mean"):
        return not clf
    return model != "logreg"


# The documented way to use the estimators on tables (docs/user_guide/tables.rst):
# chosen on iris, wine, breast_cancer and diabetes.
TABLE_RECIPE = {
    "classification": {"n_steps": 1, "n_ensemble": 1},  # alpha: the default, 1.0
    "regression": {"n_steps": 1, "alpha": 10.0, "n_ensemble": 1},
}


def lstm_estimator(pkg, model, task, seed, params, quick):
    kw = {}
    if model == "gated":
        kw["cell"] = "gated_memory"
    if quick:
        kw["max_iter"] = 50
    kw.update(params)
    kw["random_state"] = seed
    cls = pkg.LSTMClassifier if task == "classification" else pkg.LSTMRegressor
    if kw.get("differences") == "flip":  # the other setting of this estimator's default
        kw["differences"] = not cls().differences
    if kw.get("max_iter") == "flip":  # the classifier's 100, the regressor's 200
        kw["max_iter"] = {100: 200, 200: 100}[cls().max_iter]
    return cls(**kw), kw


def sk_estimator(model, task, seed, table=False):
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import numpy as np

    if model == "ed":
        return KNeighborsClassifier(n_neighbors=1, algorithm="brute")
    if model == "mlp" and table:  # the baseline for tables: L-BFGS
        cls = MLPClassifier if task == "classification" else MLPRegressor
        return make_pipeline(StandardScaler(), cls(solver="lbfgs", random_state=seed))
    if model == "mlp":
        if task == "classification":
            return make_pipeline(StandardScaler(), MLPClassifier(max_iter=500, random_state=seed))
        return make_pipeline(StandardScaler(),
                             MLPRegressor(max_iter=1000, random_state=seed))
    if model == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if model == "mean":
        return DummyRegressor()
    if model == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    raise KeyError(model)


def inputs(model, ds, X, length, unequal, znorm=True):
    """What ``model`` is given of the series ``X`` (array or list)."""
    import numpy as np
    import _data

    if ds.kind == "table":
        return X
    if model in LSTM_MODELS:
        return _data.nan_pad(X, length) if not ds.equal_length else X
    if model in ("ed", "dtw") and znorm and ds.meta.get("ucr"):
        X = _data.znormalise(X)
    if model == "dtw":
        return X
    if not ds.equal_length:
        if unequal == "resample":
            X = _data.resample(X, length)
        else:
            X = np.nan_to_num(_data.nan_pad(X, length), nan=0.0)
    if model == "minirocket":
        if X.shape[1] < 9:  # aeon's MiniRocket needs 9 steps; its error says to zero-pad
            X = np.concatenate([X, np.zeros((len(X), 9 - X.shape[1], X.shape[2]))], axis=1)
        return X
    return X.reshape(len(X), -1)  # ED, MLP, Ridge: flattened, step-major


def score(task, y, pred):
    import numpy as np

    if task == "classification":
        return float(np.mean(np.asarray(pred) == np.asarray(y)))
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(y, float)) ** 2)))


def fit_predict(est, Xtr, ytr, Xte, limit):
    import warnings

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TimeLimit(limit) as tl:
            try:
                est.fit(Xtr, ytr)
            except KeyboardInterrupt:
                if not tl.fired:
                    raise
                raise TimeoutError(f"fit interrupted after {limit:.0f} s outside the optimiser")
        t1 = time.perf_counter()
        pred = est.predict(Xte)
    t2 = time.perf_counter()
    return pred, t1 - t0, t2 - t1, tl.fired


def run_aux(model, args, task, Xtr, ytr, Xte, seed):
    """Run a minirocket/dtw fit in the --aux-python interpreter."""
    import numpy as np
    import _baselines

    a, la = _baselines.pack(Xtr)
    b, lb = _baselines.pack(Xte)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.json")
        np.savez(src, X_train=a, X_test=b, len_train=la, len_test=lb, y_train=np.asarray(ytr),
                 task=task, seed=seed, threads=args.threads)
        subprocess.run([args.aux_python, os.path.join(HERE, "_aux.py"), model, src, dst],
                       check=True, env=os.environ.copy())
        with open(dst) as f:
            out = json.load(f)
    pred = np.asarray(out["pred"], dtype=np.asarray(ytr).dtype)
    return pred, out["fit_s"], out["predict_s"], False


def one_split(model, ds, Xtr, ytr, Xte, yte, seed, args, pkg, backend):
    """Fit ``model`` once on one split; a result record."""
    import _baselines

    length = None
    if ds.kind != "table" and not ds.equal_length:
        length = max(max(len(x) for x in Xtr), max(len(x) for x in Xte))
    A = inputs(model, ds, Xtr, length, args.unequal, args.znorm)
    B = inputs(model, ds, Xte, length, args.unequal, args.znorm)
    rec = {}
    if model in LSTM_MODELS:
        est, kw = lstm_estimator(pkg, model, ds.task, seed, args.params, args.quick)
        if ds.kind != "table" and not ds.equal_length and "variable_length" not in args.params:
            est.set_params(variable_length=True)
            kw["variable_length"] = True
        rec["params"] = {k: v for k, v in kw.items() if k != "random_state"}
        if ds.kind == "table":
            # the user guide's way for tables: one step of all the features, one
            # network, the penalty of TABLE_RECIPE (what --params does not set)
            recipe = {k: v for k, v in TABLE_RECIPE[ds.task].items() if k not in args.params}
            est.set_params(**recipe)
            kw.update(recipe)
            rec["params"] = {k: v for k, v in kw.items() if k != "random_state"}
        pred, fit_s, pred_s, capped = fit_predict(est, A, ytr, B, args.time_limit)
        rec["n_iter"] = int(getattr(est, "n_iter_", -1))
    elif model in ("minirocket", "dtw"):
        if backend[model] == "here":
            est = _baselines.make(model, ds.task, seed, args.threads)
            pred, fit_s, pred_s, capped = fit_predict(est, A, ytr, B, 0)
        else:
            pred, fit_s, pred_s, capped = run_aux(model, args, ds.task, A, ytr, B, seed)
    else:
        est = sk_estimator(model, ds.task, seed, table=ds.kind == "table")
        limit = args.time_limit if model == "mlp" else 0
        pred, fit_s, pred_s, capped = fit_predict(est, A, ytr, B, limit)
    rec.update(score=score(ds.task, yte, pred), fit_s=fit_s, predict_s=pred_s, capped=capped)
    return rec


def run_model(model, ds, args, pkg, backend):
    """All seeds (LSTMs) / all folds (tables) of one model on one data set."""
    import numpy as np

    seeds = range(args.seeds) if model in LSTM_MODELS else [0]
    runs = []
    for seed in seeds:
        if ds.kind == "table":
            from sklearn.model_selection import KFold, StratifiedKFold

            cv = (StratifiedKFold if ds.task == "classification" else KFold)(
                5, shuffle=True, random_state=0)
            folds = [one_split(model, ds, ds.X_train[tr], ds.y_train[tr], ds.X_train[te],
                               ds.y_train[te], seed, args, pkg, backend)
                     for tr, te in cv.split(ds.X_train, ds.y_train)]
            rec = {k: float(np.mean([f[k] for f in folds])) for k in ("score", "fit_s", "predict_s")}
            rec["capped"] = any(f["capped"] for f in folds)
            rec["folds"] = folds
        else:
            rec = one_split(model, ds, ds.X_train, ds.y_train, ds.X_test, ds.y_test,
                            seed, args, pkg, backend)
        rec["seed"] = seed
        runs.append(rec)
        if not args.quiet:
            print(f"#   {ds.name:14s} {model:10s} seed {seed}: score {rec['score']:.4f} "
                  f"fit {rec['fit_s']:.2f}s predict {rec['predict_s']:.2f}s"
                  + (" (time limit)" if rec["capped"] else ""), file=sys.stderr, flush=True)
    scores = [r["score"] for r in runs]
    return {
        "score": float(np.mean(scores)),
        "score_std": float(np.std(scores)) if len(scores) > 1 else 0.0,
        "fit_s": float(np.mean([r["fit_s"] for r in runs])),
        "predict_s": float(np.mean([r["predict_s"] for r in runs])),
        "capped": any(r["capped"] for r in runs),
        "runs": runs,
    }


def backends(models, args):
    """Where minirocket and dtw run: "here", "aux" or None (n/a)."""
    import _baselines

    out = {}
    for model, probe in (("minirocket", _baselines.have_aeon), ("dtw", _baselines.have_numba)):
        if model not in models:
            continue
        if probe():
            out[model] = "here"
            _baselines.warmup(model, args.threads)  # JIT outside the timed fits
        elif args.aux_python:
            out[model] = "aux"
        elif model == "dtw":
            out[model] = "here"  # NumPy fallback (equal lengths only)
        else:
            out[model] = None
    return out


def _secs(t):
    return f"{t:.1f}s" if t >= 0.1 else f"{t:.2f}s"


def fmt_cell(res, task):
    if res is None:
        return "n/a"
    if "error" in res:
        return "err"
    s = f"{res['score']:.3f}"
    if len(res.get("runs", [])) > 1:
        s += f"±{res['score_std']:.3f}"
    s += f" ({_secs(res['fit_s'])}"
    if res["predict_s"] >= max(0.5, res["fit_s"]):  # 1-NN: the work is in predict
        s += f" + {_secs(res['predict_s'])} pred"
    s += ")"
    return s + ("†" if res["capped"] else "")


GROUPS = (("series", "Series: test accuracy, or test RMSE for regression (lower is better)"),
          ("table", "Tables: 5-fold CV accuracy, or RMSE for regression"))
LEGEND = ("Cells: score (mean fit seconds [+ predict seconds when larger]); ±: std over LSTM seeds; "
          "†: a fit hit the time limit (score of the interrupted fit); "
          "n/a: dependency missing; err: the model failed (see JSON).")


def table_rows(results, sets, models, group):
    """One group's table: header cells, rows of cells, one note per data set.

    Shared by the Markdown printed here and the documentation's tables
    (docs/_ext/results_tables.py). None when the group has no data set.
    """
    rows = [n for n in sets if results[n]["kind"] == group]
    if not rows:
        return None
    cols = [m for m in models if any(m in results[n]["models"] for n in rows)]
    header = ["data set", "task"] + [LABELS[m] for m in cols]
    body = []
    for n in rows:
        r = results[n]
        cells = [fmt_cell(r["models"].get(m), r["task"]) if m in r["models"] else "–" for m in cols]
        body.append([n, "acc" if r["task"] == "classification" else "RMSE"] + cells)
    notes = []
    for n in rows:
        info = ", ".join(f"{k}={v}" for k, v in results[n]["info"].items())
        note = f" — {results[n]['note']}" if results[n]["note"] else ""
        notes.append(f"{n}: {info}{note}")
    return header, body, notes


def markdown(results, sets, models):
    lines = []
    for group, title in GROUPS:
        table = table_rows(results, sets, models, group)
        if table is None:
            continue
        header, body, notes = table
        lines += [f"### {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines += [""] + [f"- {note}" for note in notes] + [""]
    lines.append(LEGEND)
    return "\n".join(lines)


def merge_saved(paths):
    """Merge saved result files, later files' models over earlier ones'.

    Returns ``(results, sets, models)`` as a run produces them.
    """
    results, sets, models = {}, [], []
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        for name, r in saved["results"].items():
            if name not in results:
                results[name] = dict(r, models={})
                sets.append(name)
            results[name]["models"].update(r["models"])
            models += [m for m in r["models"] if m not in models]
    return results, sets, [m for m in ALL_MODELS if m in models]


def render_saved(paths):
    """Merge saved result files and print their table (e.g. baselines + LSTMs)."""
    print(markdown(*merge_saved(paths.split(","))))


# -- learning curves (--curves) ------------------------------------------------


def _load_cells(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"cells": {}}


def _save_cells(path, store):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(store, f, indent=0, default=str)
    os.replace(tmp, path)


def cell_key(name, size, draw, column):
    return f"{name}|{size}|{draw}|{column}"


def run_curves(args, pkg, pkg_info, be, models):
    """Fit every (set, size, draw, model) cell not yet in the cache.

    A cached record whose fit seconds are not the model's own
    (``fit_s_includes_cross_fit``: results/curves/lstm.json's records converted
    from issue 19's cross-fitted fits) counts as missing and is refitted.
    """
    import _data

    sets = ([s.strip() for s in args.datasets.split(",")] if args.datasets else CURVE_SETS)
    sizes = [s.strip() for s in args.sizes.split(",")]
    lstm_only = all(m in LSTM_MODELS for m in models)
    path = args.cells or os.path.join(
        CURVES_DIR, (args.tag if lstm_only else "baselines") + ".json")
    store = _load_cells(path)
    cells = store["cells"]
    for name in sets:
        full = _data.load(name, args.cache)
        for size in sizes:
            if size == "full":
                splits = [(full, 0)]
            else:
                if int(size) >= len(full.y_train):
                    continue
                splits = [(_data.subsample(full, int(size), d), d) for d in range(args.draws)]
            for ds, draw in splits:
                for model in models:
                    if not applicable(model, ds) or (model in be and be[model] is None):
                        continue
                    column = args.tag if model in LSTM_MODELS else model
                    key = cell_key(name, size, draw, column)
                    cached = cells.get(key, {"error": "not run"})
                    if not (args.redo or "error" in cached
                            or cached.get("fit_s_includes_cross_fit")):
                        continue
                    load = os.getloadavg()[0]
                    try:
                        rec = one_split(model, ds, ds.X_train, ds.y_train, ds.X_test,
                                        ds.y_test, 0, args, pkg, be)
                    except Exception as exc:
                        rec = {"error": f"{type(exc).__name__}: {exc}"}
                    rec.update(task=ds.task, n_train=len(ds.y_train), load=load,
                               commit=pkg_info["commit"], isa=pkg_info["isa"],
                               params=args.params
                               if model in LSTM_MODELS else None)
                    cells[key] = rec
                    _save_cells(path, store)
                    if not args.quiet:
                        print(f"# {key}: " + (rec["error"] if "error" in rec else
                              f"{rec['score']:.4f} fit {rec['fit_s']:.2f}s load {load:.1f}"),
                              file=sys.stderr, flush=True)
    return path


def merged_cells(directory=CURVES_DIR):
    """The cells of every results file in ``directory``, merged in name order."""
    cells = {}
    for fn in sorted(os.listdir(directory)):
        if fn.endswith(".json"):
            cells.update(_load_cells(os.path.join(directory, fn))["cells"])
    return cells


CURVES_LEGEND = (
    "Cells: test accuracy (higher is better) or RMSE (lower is better), the mean over "
    "the draws of a cut size (size ×N: N draws of the training set, stratified where "
    "every class can keep a case, the test set whole; n_train in brackets), and the mean "
    "fit seconds [+ predict seconds when larger]. [k draws]: the mean of the k draws run "
    "so far. †: a fit of the cell hit the time limit (score of the interrupted fit). "
    "‡: fit seconds of a fit that also fitted issue 19's cross-fitting networks, on a "
    "loaded machine: not the model's own time. "
    "–: not run, or n/a (1-NN for regression, RidgeCV and the mean for classification); "
    "err: every fit failed (see the JSON).")


def curves_rows(cells, tags=("lstm",), sizes=None):
    """The learning-curve table: header cells and rows of cells.

    Rows: (data set, size), the ``sizes`` only when given ("full", "30",
    ...); columns: the LSTM ``tags`` (cells cached by ``--curves --tag``)
    then the baselines; a cell is the mean score over the draws and the mean
    fit seconds. Shared by ``--render-curves`` and the documentation's table
    (docs/_ext/results_tables.py).
    """
    import numpy as np

    tags = list(tags)
    cols = tags + [m for m in CURVE_MODELS if m not in LSTM_MODELS]
    agg = {}
    for key, rec in cells.items():
        name, size, draw, column = key.split("|")
        if column in cols and (sizes is None or size in sizes):
            agg.setdefault((name, size), {}).setdefault(column, []).append(rec)
    order = {n: i for i, n in enumerate(CURVE_SETS)}
    rows = sorted(agg, key=lambda r: (order.get(r[0], 99), r[1] != "full", r[1]))
    labels = [("LSTM (default)" if t == "lstm" else f"LSTM {t}") if t in tags else LABELS[t]
              for t in cols]
    header = ["data set", "size", "task"] + labels
    body = []
    for row in rows:
        recs = agg[row]
        draws = max(len(v) for v in recs.values())
        task = next(r["task"] for rs in recs.values() for r in rs if "task" in r)
        out = []
        for c in cols:
            rs = [r for r in recs.get(c, []) if "score" in r]
            if not rs:
                out.append("err" if recs.get(c) else "–")
                continue
            sc = np.mean([r["score"] for r in rs])
            fit = np.mean([r["fit_s"] for r in rs])
            pred = np.mean([r.get("predict_s", 0.0) for r in rs])
            text = f"{sc:.3f} ({_secs(fit)}"
            text += "‡" if any(r.get("fit_s_includes_cross_fit") for r in rs) else ""
            if pred >= max(0.5, fit):  # 1-NN: the work is in predict
                text += f" + {_secs(pred)} pred"
            text += ")" + ("†" if any(r.get("capped") for r in rs) else "")
            out.append(text + (f" [{len(rs)} draws]" if len(rs) < draws else ""))
        n = next(r["n_train"] for rs in recs.values() for r in rs if "n_train" in r)
        size = "full" if row[1] == "full" else f"{row[1]} ×{draws}"
        body.append([row[0], f"{size} ({n})", "acc" if task == "classification" else "RMSE"]
                    + out)
    return header, body


def curves_table(cells, tags=("lstm",), sizes=None):
    """The learning-curve table as Markdown, with its legend."""
    header, body = curves_rows(cells, tags, sizes)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines + ["", CURVES_LEGEND])


def write_between_markers(path, text):
    """Replace what lies between the two ``README_MARKERS`` lines of the file
    ``path`` with ``text``."""
    with open(path) as f:
        content = f.read()
    start, end = (content.find(marker) for marker in README_MARKERS)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {README_MARKERS[0]!r} ... {README_MARKERS[1]!r} block")
    start += len(README_MARKERS[0])
    with open(path, "w") as f:
        f.write(content[:start] + "\n" + text + "\n" + content[end:])


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        return render_saved(args.from_json)
    if args.render_curves:
        table = curves_table(merged_cells(), [t.strip() for t in args.curve_tags.split(",")],
                             [s.strip() for s in args.sizes.split(",")])
        return write_between_markers(args.readme, table) if args.readme else print(table)
    set_threads(args.threads)
    sys.path.insert(0, HERE)
    import numpy as np
    import sklearn
    import scipy

    import _data

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    pkg, pkg_info = import_package()
    if args.tables_only:
        sets = TABLE_SETS
    elif args.datasets:
        sets = [s.strip() for s in args.datasets.split(",") if s.strip()]
    else:
        sets = list(QUICK_SETS if args.quick else SERIES_SETS)
        if args.tables:
            sets += TABLE_SETS
    models = [m.strip() for m in args.models.split(",")] if args.models else list(ALL_MODELS)
    for m in models:
        if m not in ALL_MODELS:
            raise SystemExit(f"unknown model {m!r}; known: {ALL_MODELS}")
    if args.curves and not args.models:
        models = list(CURVE_MODELS)
    be = backends(models, args)
    if args.curves:
        return run_curves(args, pkg, pkg_info, be, models)

    header = {
        "package": pkg_info, "params": args.params, "seeds": args.seeds, "quick": args.quick,
        "time_limit_s": args.time_limit, "threads": args.threads, "unequal": args.unequal,
        "lstm_defaults": {k: v for k, v in pkg.LSTMClassifier().get_params().items()},
        "backends": be, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "sklearn": sklearn.__version__,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"# sklearn_gatedmem {pkg_info['commit']} from {pkg_info['path']}; {pkg_info['isa']}; params {args.params}; "
          f"seeds {args.seeds}; threads {args.threads}; time limit {args.time_limit:.0f}s"
          + "".join(f"; {m}: {where or 'n/a'}" for m, where in be.items())
          + ("" if "dtw" not in be else " (numba)" if be["dtw"] == "aux" or _has_numba()
             else " (NumPy)"), file=sys.stderr)

    results = {}
    for name in sets:
        ds = _data.load(name, args.cache)
        results[name] = {"task": ds.task, "kind": ds.kind, "info": ds.describe(),
                         "note": ds.note, "models": {}}
        for model in models:
            if not applicable(model, ds):
                continue
            if model in be and be[model] is None:
                results[name]["models"][model] = None
                continue
            try:
                results[name]["models"][model] = run_model(model, ds, args, pkg, be)
            except Exception as exc:  # one failing baseline must not sink the table
                msg = f"{type(exc).__name__}: {exc}"
                print(f"#   {name:14s} {model:10s} FAILED: {msg}", file=sys.stderr, flush=True)
                results[name]["models"][model] = {"error": msg}
        with open(args.json, "w") as f:  # after each data set: partial results survive
            json.dump({"header": header, "results": results}, f, indent=1, default=str)

    print(markdown(results, sets, models))
    print(f"\nResults: {args.json}", file=sys.stderr)
    return results


def _has_numba():
    import _baselines

    return _baselines.have_numba()


if __name__ == "__main__":
    main()
