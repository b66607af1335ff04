"""Side-by-side benchmarks: the NumPy core of sklearn_gatedmem against PyTorch.

One command (from the repository root)::

    pip install -e ".[benchmark]" && python benchmarks/run.py          # full, ~10 min
    python benchmarks/run.py --quick                                   # smoke run, ~1 min

Sections (all in one process except the memory runs, each in its own
subprocess so that its peak resident memory is its own):

``gemm``
    NumPy's 1024 x 1024 matmul in float64 and float32: the machine's dense
    peak in this very run, the roofline against which both sides are read.
``eval``
    One L-BFGS evaluation (loss + gradient over the whole training set), the
    four workloads of ``WORKLOADS`` below in float64 and float32: the project's
    ``_objective.loss_grad`` exactly as ``fit`` calls it, against
    ``torch.nn.LSTM(batch_first=True)`` + ``nn.Linear`` forward and autograd
    backward of the same weighted log loss on the same data, same dtype, same
    two threads. Runs alternate A B A B; medians; ratio project / PyTorch; the
    fraction of the GEMM peak each side reaches (24 N T H (D + H) flops,
    twice that when bidirectional).
``predict``
    Prediction on the same workloads: ``_objective.decision`` (the path of
    ``predict``, ``score`` and the early-stopping monitor) against the same
    PyTorch network's forward under ``torch.no_grad()``.
``fit``
    ``LSTMClassifier.fit`` against the same L-BFGS recipe (SciPy L-BFGS-B over
    one float64 vector, ``jac=True``) driven by PyTorch's loss and gradient;
    same data, same ``max_iter``; seconds per iteration and per evaluation.
``memory``
    Peak resident memory (``ru_maxrss``) of a whole ``fit`` on 10k, 50k and
    200k sequences of 32 steps x 8 features, 32 hidden, ``max_iter=2``, each in
    a fresh subprocess, and the seconds per evaluation at each size.

Two instruction sets: by default (``--isa both``) every section runs twice,
each in a fresh subprocess: ``avx512``, the machine with every AVX-512 path
on (``OPENBLAS_CORETYPE`` and the other variables below removed from the
environment, so that OpenBLAS picks its kernel by the CPU), and ``avx2``,
an AVX2 + FMA machine emulated on an AVX-512 one (``NPY_DISABLE_CPU_FEATURES``
for NumPy, ``OPENBLAS_CORETYPE=Haswell`` for OpenBLAS,
``ONEDNN_MAX_CPU_ISA=AVX2`` for PyTorch's oneDNN and ``ATEN_CPU_CAPABILITY=avx2``
for its own kernels); each child checks that its
settings took effect (``np.show_runtime()``, threadpoolctl,
``torch.backends.cpu.get_cpu_capability()``) and reports the machine (CPU
features, BLAS kernel, the activation method chosen per dtype) above its
tables and in the JSON.

A table is printed; the raw numbers go to ``benchmarks/results.json``.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without install

WORKLOADS = {  # name: (n_sequences, n_steps, n_features, n_hidden, n_directions)
    "small": (256, 32, 8, 32, 1),
    "medium": (1024, 64, 16, 64, 1),
    "long": (256, 256, 4, 32, 1),
    "wide": (512, 16, 64, 128, 1),
    # the new defaults' typical problem: 32 patch steps of 16 values, bidirectional
    "patched": (200, 32, 16, 32, 2),
}
# The instruction-set configurations: environment of a child process (None
# removes a variable), and what it must then report (see machine()). "avx512"
# is the machine with every AVX-512 path on: OpenBLAS picks its kernel by the
# CPU (a shell's OPENBLAS_CORETYPE=Haswell would otherwise hand NumPy AVX2
# GEMMs next to PyTorch's AVX-512 ones). "avx2" emulates an AVX2 + FMA machine
# on an AVX-512 one; NumPy 2.4 names its AVX-512 level X86_V4, and the
# per-feature names alone leave it enabled. "native" is the environment as it is.
ISA_CONFIGS = {
    "avx512": {"OPENBLAS_CORETYPE": None, "NPY_DISABLE_CPU_FEATURES": None,
               "ONEDNN_MAX_CPU_ISA": None, "ATEN_CPU_CAPABILITY": None},
    "avx2": {
        "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"
        " AVX512_ICL AVX512_SPR X86_V4",
        "OPENBLAS_CORETYPE": "Haswell",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        # ATen's own kernels (what get_cpu_capability() reports) ignore oneDNN's cap
        "ATEN_CPU_CAPABILITY": "avx2",
    },
    "native": {},
}
BOTH = ("avx512", "avx2")  # what --isa both runs
# OpenBLAS's kernels for AVX-512 CPUs (its names as threadpoolctl reports them)
AVX512_BLAS_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")
DTYPES = ("float64", "float32")
MEMORY_SIZES = (10_000, 50_000, 200_000)
THREADS = 2


def flops(n, t, d, h, n_directions=1):
    """Dense work of one evaluation: 3 GEMM passes over 4 gates, per direction."""
    return 24 * n * t * h * (d + h) * n_directions


def make_data(n, t, d, dtype, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, t, d)).astype(dtype)
    y = (X[:, :3, 0].sum(axis=1) + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


# -- the two sides of one evaluation ------------------------------------------


def project_setup(X, y, h, n_directions=1):
    """What ``fit`` hands to ``loss_grad``, built by the estimator's own code."""
    from sklearn_gatedmem import LSTMClassifier
    from sklearn_gatedmem._input import weighted_mean_scale
    from sklearn_gatedmem._memory import plan
    from sklearn_gatedmem._params import initialize

    # the raw steps, as the network of this workload reads them (no patches,
    # no instance_norm: X is handed to loss_grad as it is)
    # pooling="last": the final state, as the PyTorch side reads it
    est = LSTMClassifier(hidden_layer_sizes=h, cell="lstm", bidirectional=n_directions == 2,
                         patch_size=None, instance_norm=None, pooling="last")
    n, t, d = X.shape
    Y, out_activation, _ = est._encode_targets(y)
    sw = np.ones(n)
    x_mean, x_scale = weighted_mean_scale(X, sw)
    spec = est._network_of(t, d, Y.shape[1], out_activation, x_mean, x_scale)
    theta = initialize(spec.layout, spec.cell, np.random.RandomState(0))
    chunk = plan(spec, n, t, X.dtype.itemsize).chunk_rows
    return {"X": X, "Y": Y, "sw": sw, "spec": spec, "theta": theta, "chunk": chunk, "ws": {}}


def project_eval(s):
    from sklearn_gatedmem import _objective

    return _objective.loss_grad(
        s["theta"], s["X"], s["Y"], s["sw"], 1e-4, s["spec"], s["chunk"], s["ws"]
    )


def project_predict(s):
    from sklearn_gatedmem import _objective

    return _objective.decision(s["theta"], s["X"], s["spec"], s["chunk"])


def floor_setup(X, h, n_directions, chunk, threads):
    """A lower bound on any lstm loop built of NumPy's kernels, on one
    workload's shapes, chunk by chunk as the project runs it.

    The kernels no such loop can skip, each timed alone in this process:

    * GEMMs, on ``threads`` BLAS threads. Forward, per step and direction,
      the fused weights ``(4H, D + 1 + H)`` by the step's inputs, bias row and
      state; or, the other schedule, whichever is faster, the inputs' part
      for all steps in one GEMM ``(4H, D + 1)`` by ``(D + 1, T n)`` and per
      step only the recurrent ``(4H, H)`` by the state (the sum of the two
      parts left out). Backward adds, per step and direction, ``dh = R dA``
      and the weight gradient ``Z_t dA_t^T``.
    * The activation method's calls for the four gates and ``tanh(c_t)``
      (the method the core chose for this dtype on this machine), on one
      thread, divided by ``threads``: perfectly spread over the cores, which
      NumPy's single-threaded ufuncs cannot beat, threads or not.

    Left out: every product and sum of the cell's equations, the
    standardisation of the input, the reversal of a backward direction and
    the head. So no schedule of NumPy's kernels, threaded or not, runs below
    this floor on that machine.
    """
    from sklearn_gatedmem import _cells

    n, t, d = X.shape
    dtype = X.dtype
    n_chunks = -(-n // chunk)
    rows = n // n_chunks  # rounding down keeps it a floor
    rng = np.random.RandomState(0)
    width = d + 1 + h
    method = _cells.activation_method(dtype)
    return {
        "act": _cells.ACTIVATIONS[method],
        "threads": threads,
        "repeat": n_chunks * n_directions,
        "h": h,
        "M": rng.normal(scale=0.3, size=(4 * h, width)).astype(dtype),
        "Mx": rng.normal(scale=0.3, size=(4 * h, d + 1)).astype(dtype),
        "Mh": rng.normal(scale=0.3, size=(4 * h, h)).astype(dtype),
        "R": rng.normal(scale=0.3, size=(h, 4 * h)).astype(dtype),
        "X": rng.normal(size=(d + 1, t * rows)).astype(dtype),
        "XW": np.empty((4 * h, t * rows), dtype),
        "Z": rng.normal(size=(t, width, rows)).astype(dtype),
        "dA": rng.normal(size=(t, 4 * h, rows)).astype(dtype),
        "gates": np.empty((4 * h, rows), dtype),
        "state": np.empty((h, rows), dtype),
        "dh": np.empty((h, rows), dtype),
        "G": np.empty((t, width, 4 * h), dtype),
    }


def floor_predict(s):
    """The forward's floor, in seconds (see :func:`floor_setup`)."""
    gemm = min(_timed(_gemm_fused, s), _timed(_gemm_split, s))
    # the activations' inputs are copied in fresh at every step (as a GEMM
    # would leave them); the copies' own time is taken off again
    activations = _timed(_activations, s) - _timed(_copies, s)
    return gemm + max(activations, 0.0) / s["threads"]


def floor_eval(s):
    """The forward's floor plus backward's GEMMs, in seconds."""
    return floor_predict(s) + _timed(_gemm_backward, s)


def _timed(f, s):
    start = time.perf_counter()
    f(s)
    return time.perf_counter() - start


def _gemm_fused(s):
    M, gates = s["M"], s["gates"]
    for _ in range(s["repeat"]):
        for z in s["Z"]:
            np.matmul(M, z, out=gates)


def _gemm_split(s):
    Mh, gates, h = s["Mh"], s["gates"], s["h"]
    for _ in range(s["repeat"]):
        np.matmul(s["Mx"], s["X"], out=s["XW"])
        for z in s["Z"]:
            np.matmul(Mh, z[-h:], out=gates)


def _activations(s, activate=True):
    act, h, gates, state, source = s["act"], s["h"], s["gates"], s["state"], s["dA"][0]
    with np.errstate(**act["errstate"]):
        for _ in range(s["repeat"]):
            for _ in range(len(s["Z"])):
                np.copyto(gates, source)
                if activate:
                    act["gates"](gates, gates[: 3 * h], gates[3 * h :])
                    act["state"](gates[:h], state)


def _copies(s):
    _activations(s, activate=False)


def _gemm_backward(s):
    R, Z, dA, dh, G = (s[k] for k in ("R", "Z", "dA", "dh", "G"))
    for _ in range(s["repeat"]):
        for a in dA:
            np.matmul(R, a, out=dh)
        np.matmul(Z, dA.transpose(0, 2, 1), out=G)


class TorchNet:
    """nn.LSTM(batch_first) + nn.Linear, the weighted mean log loss + L2."""

    def __init__(self, d, h, dtype, seed=0, n_directions=1):
        import torch

        torch.manual_seed(seed)
        tdtype = getattr(torch, dtype)
        self.torch = torch
        self.lstm = torch.nn.LSTM(
            d, h, batch_first=True, bidirectional=n_directions == 2
        ).to(tdtype)
        self.head = torch.nn.Linear(n_directions * h, 1).to(tdtype)
        self.params = list(self.lstm.parameters()) + list(self.head.parameters())
        self.dtype = tdtype

    def loss(self, X, y, w, alpha=0.0):
        F = self.torch.nn.functional
        z = self.head(self._last(X))[:, 0]
        loss = F.binary_cross_entropy_with_logits(z, y, weight=w, reduction="sum")
        if alpha:
            weights = [p for name, p in self._named() if "weight" in name]
            loss = loss + 0.5 * alpha * sum((p * p).sum() for p in weights)
        return loss / w.sum()

    def _named(self):
        yield from self.lstm.named_parameters()
        yield from self.head.named_parameters()

    def loss_grad(self, X, y, w, alpha=0.0):
        for p in self.params:
            p.grad = None
        loss = self.loss(X, y, w, alpha)
        loss.backward()
        return loss

    def _last(self, X):
        """Each direction's final state, as the project's ``pooling="last"``."""
        _, (h_n, _) = self.lstm(X)
        return h_n[0] if h_n.shape[0] == 1 else self.torch.cat([h_n[0], h_n[1]], dim=1)

    def predict(self, X):
        with self.torch.no_grad():
            return self.head(self._last(X))

    # the flat float64 vector SciPy's L-BFGS works on
    def get_flat(self):
        return np.concatenate([p.detach().double().numpy().ravel() for p in self.params])

    def set_flat(self, theta):
        torch = self.torch
        with torch.no_grad():
            start = 0
            for p in self.params:
                stop = start + p.numel()
                p.copy_(torch.from_numpy(theta[start:stop]).view_as(p))
                start = stop

    def flat_grad(self):
        return np.concatenate([p.grad.double().numpy().ravel() for p in self.params])


def torch_setup(X, y, h, n_directions=1):
    torch = __import__("torch")
    n, t, d = X.shape
    net = TorchNet(d, h, str(X.dtype), n_directions=n_directions)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(X.dtype))
    wt = torch.ones(n, dtype=net.dtype)
    return {"net": net, "X": Xt, "y": yt, "w": wt}


def torch_eval(s):
    return s["net"].loss_grad(s["X"], s["y"], s["w"], 1e-4)


def torch_predict(s):
    return s["net"].predict(s["X"])


# -- timing -----------------------------------------------------------------


PAUSE = 0.3  # seconds between timed runs: see alternate


def alternate(fs, reps, pause=PAUSE):
    """Time the functions ``fs`` in turn, A B C A B C ..., ``reps`` runs each.

    Each timed run follows a pause and an untimed run of the same function.
    After a call, OpenBLAS's worker threads keep spinning on the cores for up
    to about 0.1 s, and OpenMP's (PyTorch's) for a while too, so a run right
    after the other side's competes with its threads (measured: PyTorch's
    ``long`` float32 evaluation took 110 ms right after a NumPy one, 56 ms
    alone); and a run right after a pause pays for waking its own threads.
    So each side is timed warm and undisturbed, as in a fit, where the
    evaluations follow one another.

    Returns, per function, its wall-clock seconds and the process's CPU
    seconds (all its threads, spinning included): on a machine loaded by
    others the CPU time is the steadier of the two. A function that returns
    a float is timed by it instead (the floors time the best of their parts).
    """
    times, cpus = [[] for _ in fs], [[] for _ in fs]
    for _ in range(reps):
        for f, wall, cpu in zip(fs, times, cpus):
            time.sleep(pause)
            f()
            c0, t0 = time.process_time(), time.perf_counter()
            result = f()
            elapsed = time.perf_counter() - t0
            wall.append(result if isinstance(result, float) else elapsed)
            cpu.append(time.process_time() - c0)
    return times, cpus


def gemm_peak(reps):
    """Median GFLOP/s of NumPy's 1024^2 matmul, per dtype."""
    out = {}
    rng = np.random.RandomState(0)
    for dtype in DTYPES:
        a, b = (rng.normal(size=(1024, 1024)).astype(dtype) for _ in range(2))
        c = np.empty_like(a)
        np.matmul(a, b, out=c)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        out[dtype] = {
            "gflops_median": 2 * 1024**3 / statistics.median(times) / 1e9,
            "gflops_best": 2 * 1024**3 / min(times) / 1e9,
        }
    return out


def bench_eval(workloads, reps, peak, threads):
    rows = []
    for name, (n, t, d, h, nd) in workloads.items():
        for dtype in DTYPES:
            X, y = make_data(n, t, d, dtype)
            ps, ts = project_setup(X, y, h, nd), torch_setup(X, y, h, nd)
            fs = floor_setup(X, h, nd, ps["chunk"], threads)
            (ta, tb, tf), (ca, cb, _) = alternate(
                [lambda: project_eval(ps), lambda: torch_eval(ts), lambda: floor_eval(fs)], reps
            )
            ma, mb = statistics.median(ta), statistics.median(tb)
            gf = flops(n, t, d, h, nd) / 1e9
            rows.append(
                {
                    "workload": name,
                    "shape": [n, t, d, h, nd],
                    "dtype": dtype,
                    "chunk": ps["chunk"],
                    **_timings(ta, tb, ca, cb, tf),
                    "project_gflops": gf / ma,
                    "torch_gflops": gf / mb,
                    "project_peak_fraction": gf / ma / peak[dtype]["gflops_best"],
                    "torch_peak_fraction": gf / mb / peak[dtype]["gflops_best"],
                }
            )
            r = rows[-1]
            print(
                f"  {name:7s} {dtype:8s} project {1e3 * ma:8.1f} ms  torch "
                f"{1e3 * mb:8.1f} ms  ratio {r['ratio']:.2f}",
                flush=True,
            )
    return rows


def _timings(ta, tb, ca, cb, tf):
    """The side-by-side timing fields of a row: wall-clock runs (ta, tb) and
    CPU-time runs (ca, cb) of the project and PyTorch, medians and ratios;
    wall-clock runs of the floor (tf, see :func:`floor_setup`)."""
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {
        "floor_s": tf,
        "floor_median_s": statistics.median(tf),
        "floor_ratio": statistics.median(tf) / mb,
        "project_s": ta,
        "torch_s": tb,
        "project_median_s": ma,
        "torch_median_s": mb,
        "ratio": ma / mb,
        "ratio_of_best": min(ta) / min(tb),
        "project_cpu_s": ca,
        "torch_cpu_s": cb,
        "cpu_ratio": statistics.median(ca) / statistics.median(cb),
    }


def bench_predict(workloads, reps, threads):
    rows = []
    for name, (n, t, d, h, nd) in workloads.items():
        for dtype in DTYPES:
            X, y = make_data(n, t, d, dtype)
            ps, ts = project_setup(X, y, h, nd), torch_setup(X, y, h, nd)
            fs = floor_setup(X, h, nd, ps["chunk"], threads)
            (ta, tb, tf), (ca, cb, _) = alternate(
                [lambda: project_predict(ps), lambda: torch_predict(ts),
                 lambda: floor_predict(fs)], reps,
            )
            ma, mb = statistics.median(ta), statistics.median(tb)
            rows.append(
                {
                    "workload": name,
                    "shape": [n, t, d, h, nd],
                    "dtype": dtype,
                    "chunk": ps["chunk"],
                    **_timings(ta, tb, ca, cb, tf),
                }
            )
            print(
                f"  {name:7s} {dtype:8s} project {1e3 * ma:8.1f} ms  torch "
                f"{1e3 * mb:8.1f} ms  ratio {ma / mb:.2f}",
                flush=True,
            )
    return rows


# -- the machine --------------------------------------------------------------


def machine(isa):
    """What this process runs on: CPU, NumPy's SIMD levels, the BLAS kernel,
    PyTorch's CPU capability, the activation method chosen per dtype; and
    whether the configuration asked for (``ISA_CONFIGS[isa]``) took effect."""
    import contextlib
    import io

    import threadpoolctl
    import torch

    from sklearn_gatedmem import _cells

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        runtime = np.show_runtime()  # prints; returns None in NumPy 2.4
    simd = {}
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__
        from numpy._core._multiarray_umath import __cpu_features__ as features

        simd = {
            "baseline": list(__cpu_baseline__),
            "found": [f for f in __cpu_dispatch__ if features.get(f)],
            "not_found": [f for f in __cpu_dispatch__ if not features.get(f)],
        }
    except ImportError:  # pragma: no cover
        simd = {"show_runtime": buf.getvalue()}
    del runtime
    blas = [
        {k: lib.get(k) for k in ("internal_api", "architecture", "version", "num_threads")}
        for lib in threadpoolctl.threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "isa_config": isa,
        "environment": ISA_CONFIGS.get(isa, {}),
        "cpu": cpu,
        "numpy_simd": simd,
        "blas": blas,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "activation": {dt: _cells.activation_method(np.dtype(dt)) for dt in DTYPES},
    }
    problems = []
    found = simd.get("found", [])
    kernels = [(lib["architecture"] or "").lower() for lib in blas]
    if isa == "avx2":
        if "X86_V4" in found or any(f.startswith("AVX512") for f in found):
            problems.append("NumPy still dispatches AVX-512")
        if any(k != "haswell" for k in kernels):
            problems.append("OpenBLAS kernel is not Haswell")
        if "AVX512" in info["torch_cpu_capability"]:
            problems.append("PyTorch still reports AVX-512")
    elif isa == "avx512":
        if "X86_V4" not in found:
            problems.append("NumPy finds no AVX-512 (X86_V4): not an AVX-512 machine")
        if any(k not in AVX512_BLAS_KERNELS for k in kernels):
            problems.append(f"OpenBLAS kernel {kernels} is not an AVX-512 one")
        if "AVX512" not in info["torch_cpu_capability"]:
            problems.append("PyTorch does not report AVX-512")
    info["configuration_problems"] = problems
    return info


def describe(info):
    simd = info["numpy_simd"]
    blas = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info["blas"])
    text = (
        f"[{info['isa_config']}] {info['cpu']}; NumPy SIMD found {' '.join(simd.get('found', []))}"
        f", not found {' '.join(simd.get('not_found', []))}; BLAS {blas}; "
        f"PyTorch CPU capability {info['torch_cpu_capability']}; activation method "
        + ", ".join(f"{dt} {m}" for dt, m in info["activation"].items())
    )
    if info.get("configuration_problems"):
        text += "; CONFIGURATION DID NOT TAKE EFFECT: " + "; ".join(info["configuration_problems"])
    return text


# -- end to end ---------------------------------------------------------------


class _CountingObjective:
    """Counts the estimator's calls of ``_objective.loss_grad``."""

    def __enter__(self):
        from sklearn_gatedmem import _objective

        self.module, self.original, self.calls = _objective, _objective.loss_grad, 0
        self.seconds = []

        def counted(*args, **kwargs):
            self.calls += 1
            start = time.perf_counter()
            result = self.original(*args, **kwargs)
            self.seconds.append(time.perf_counter() - start)
            return result

        _objective.loss_grad = counted
        return self

    def __exit__(self, *exc):
        self.module.loss_grad = self.original


def project_fit(X, y, h, max_iter):
    from sklearn_gatedmem import LSTMClassifier

    clf = LSTMClassifier(hidden_layer_sizes=h, max_iter=max_iter, tol=0.0, random_state=0)
    with warnings.catch_warnings(), _CountingObjective() as counter:
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
    return seconds, clf.n_iter_, counter.calls


def torch_fit(X, y, h, max_iter, alpha=1e-4):
    """The estimator's recipe with PyTorch's gradient: standardise X, then
    SciPy's L-BFGS-B over one float64 vector with ``jac=True``."""
    import torch
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    n, t, d = X.shape
    mean = X.mean(axis=(0, 1), dtype=np.float64)
    scale = X.std(axis=(0, 1), dtype=np.float64)
    Xs = torch.from_numpy(((X - mean) / scale).astype(X.dtype))
    net = TorchNet(d, h, str(X.dtype))
    yt = torch.from_numpy(y.astype(X.dtype))
    w = torch.ones(n, dtype=net.dtype)
    calls = [0]

    def fun(theta):
        calls[0] += 1
        net.set_flat(theta)
        loss = net.loss_grad(Xs, yt, w, alpha)
        return float(loss), net.flat_grad()

    # as the estimator does: SciPy's own BLAS on one thread (its spinning
    # worker threads would slow the next evaluation); torch's threads untouched
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            fun,
            net.get_flat(),
            method="L-BFGS-B",
            jac=True,
            options={"maxiter": max_iter, "gtol": 0.0, "maxfun": 15000},
        )
    return time.perf_counter() - t0, int(result.nit), calls[0]


def bench_fit(workloads, max_iter, reps):
    rows = []
    for name, (n, t, d, h, nd) in workloads.items():
        if nd != 1:  # the fit recipes here are unidirectional
            continue
        for dtype in DTYPES:
            X, y = make_data(n, t, d, dtype, seed=1)
            runs_p, runs_t = [], []
            for _ in range(reps):  # alternate: A B A B, with pauses as alternate
                time.sleep(PAUSE)
                runs_p.append(project_fit(X, y, h, max_iter))
                time.sleep(PAUSE)
                runs_t.append(torch_fit(X, y, h, max_iter))

            def per(runs, k):  # median seconds per iteration (k=1) / evaluation (k=2)
                return statistics.median(r[0] / max(r[k], 1) for r in runs)

            row = {
                "workload": name,
                "dtype": dtype,
                "max_iter": max_iter,
                "project_runs": runs_p,
                "torch_runs": runs_t,
                "project_s_per_iter": per(runs_p, 1),
                "torch_s_per_iter": per(runs_t, 1),
                "project_s_per_eval": per(runs_p, 2),
                "torch_s_per_eval": per(runs_t, 2),
            }
            row["ratio_per_iter"] = row["project_s_per_iter"] / row["torch_s_per_iter"]
            row["ratio_per_eval"] = row["project_s_per_eval"] / row["torch_s_per_eval"]
            rows.append(row)
            print(
                f"  {name:7s} {dtype:8s} s/iter project {row['project_s_per_iter']:.3f}"
                f"  torch {row['torch_s_per_iter']:.3f}  ratio {row['ratio_per_iter']:.2f}",
                flush=True,
            )
    return rows


# -- memory -------------------------------------------------------------------


def _rss_now_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb():
    """This process's peak resident memory: VmHWM, the high-water mark of its
    own address space. (``ru_maxrss`` of a child started by fork and exec
    also counts the parent's resident memory at the fork, about 1 GB here.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_child(n, dtype, max_iter):
    """Runs in a fresh interpreter: one fit, its peak resident memory."""
    from sklearn_gatedmem import LSTMClassifier

    base = _rss_now_mb()
    rng = np.random.RandomState(0)
    X = np.empty((n, 32, 8), dtype=dtype)
    for start in range(0, n, 10_000):  # no full-size float64 temporary
        X[start : start + 10_000] = rng.normal(size=X[start : start + 10_000].shape)
    y = (X[:, :3, 0].sum(axis=1) > 0).astype(int)
    before = _rss_now_mb()
    clf = LSTMClassifier(hidden_layer_sizes=32, max_iter=max_iter, tol=0.0, random_state=0)
    with warnings.catch_warnings(), _CountingObjective() as counter:
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf.predict(X)
    predict_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "n": n,
                "dtype": dtype,
                "x_mb": X.nbytes / 2**20,
                "interpreter_mb": base,
                "before_fit_mb": before,
                "peak_mb": _peak_rss_mb(),
                "fit_s": seconds,
                "n_iter": int(clf.n_iter_),
                "n_eval": counter.calls,
                "s_per_eval": seconds / max(counter.calls, 1),
                "eval_median_s": statistics.median(counter.seconds),
                "predict_s": predict_s,
            }
        )
    )


def bench_memory(sizes, dtype, max_iter):
    rows = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n), dtype, str(max_iter)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["peak_minus_x_mb"] = row["peak_mb"] - row["x_mb"]
        row["under_x_plus_1gb"] = row["peak_mb"] < row["x_mb"] + 1024
        rows.append(row)
        print(
            f"  N={n:>7d} X {row['x_mb']:7.0f} MB  peak {row['peak_mb']:7.0f} MB"
            f"  evaluation {row['eval_median_s']:.3f} s",
            flush=True,
        )
    return rows


# -- report -------------------------------------------------------------------


def print_tables(results):
    if "configs" in results:
        for sub in results["configs"].values():
            print_tables(sub)
        return
    if results.get("machine"):
        print("\nMachine: " + describe(results["machine"]))
    peak = results.get("gemm")
    if peak:
        print("\nNumPy 1024^2 GEMM (GFLOP/s, median / best; best is the peak used below):")
        for dtype, p in peak.items():
            print(f"  {dtype:8s} {p['gflops_median']:6.1f} / {p['gflops_best']:6.1f}")
    if results.get("eval"):
        print(
            "\nOne L-BFGS evaluation (loss + gradient), median ms; ratio = project /"
            " PyTorch of the medians (target <= 0.7); ratio of best: of the fastest runs"
            " (the least disturbed by other load)"
        )
        print(
            "| workload | dtype | chunk | project ms | PyTorch ms | ratio | ratio of best"
            " | CPU-time ratio | project % of GEMM peak | PyTorch % of GEMM peak"
            " | floor ms | floor / PyTorch |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results["eval"]:
            print(
                f"| {r['workload']} | {r['dtype']} | {r['chunk']} | "
                f"{1e3 * r['project_median_s']:.1f} | {1e3 * r['torch_median_s']:.1f} | "
                f"**{r['ratio']:.2f}** | {r['ratio_of_best']:.2f} | {r['cpu_ratio']:.2f} | "
                f"{100 * r['project_peak_fraction']:.0f} % | "
                f"{100 * r['torch_peak_fraction']:.0f} % | "
                f"{1e3 * r['floor_median_s']:.1f} | {r['floor_ratio']:.2f} |"
            )
    if results.get("predict"):
        print(
            "\nPrediction (_objective.decision against PyTorch's no-grad forward),"
            " median ms (target <= 0.7)"
        )
        print(
            "| workload | dtype | project ms | PyTorch ms | ratio | ratio of best"
            " | CPU-time ratio | floor ms | floor / PyTorch |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results["predict"]:
            print(
                f"| {r['workload']} | {r['dtype']} | {1e3 * r['project_median_s']:.1f} | "
                f"{1e3 * r['torch_median_s']:.1f} | **{r['ratio']:.2f}** | "
                f"{r['ratio_of_best']:.2f} | {r['cpu_ratio']:.2f} | "
                f"{1e3 * r['floor_median_s']:.1f} | {r['floor_ratio']:.2f} |"
            )
    if results.get("fit"):
        print("\nEnd to end: LSTMClassifier.fit vs SciPy L-BFGS-B driven by PyTorch")
        print(
            "| workload | dtype | max_iter | project s/iter | PyTorch s/iter | ratio"
            " | project s/eval | PyTorch s/eval |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in results["fit"]:
            print(
                f"| {r['workload']} | {r['dtype']} | {r['max_iter']} | "
                f"{r['project_s_per_iter']:.3f} | {r['torch_s_per_iter']:.3f} | "
                f"{r['ratio_per_iter']:.2f} | {r['project_s_per_eval']:.3f} | "
                f"{r['torch_s_per_eval']:.3f} |"
            )
    if results.get("memory"):
        print("\nPeak resident memory of fit (32 steps x 8 features, 32 hidden)")
        print(
            "| N | X MB | before fit MB | peak MB | peak - X MB | < X + 1 GB |"
            " fit s | evaluations | s per evaluation (median) | per 10k sequences |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in results["memory"]:
            print(
                f"| {r['n']} | {r['x_mb']:.0f} | {r['before_fit_mb']:.0f} | "
                f"{r['peak_mb']:.0f} | {r['peak_minus_x_mb']:.0f} | "
                f"{'yes' if r['under_x_plus_1gb'] else 'NO'} | {r['fit_s']:.2f} | "
                f"{r['n_eval']} | {r['eval_median_s']:.3f} | "
                f"{1e4 * r['eval_median_s'] / r['n']:.4f} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run")
    parser.add_argument(
        "--sections",
        default="gemm,eval,predict,fit,memory",
        help="comma-separated subset of gemm,eval,predict,fit,memory",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset"
    )
    parser.add_argument("--reps", type=int, default=None, help="runs per side")
    parser.add_argument(
        "--isa", default="both", choices=["both"] + list(ISA_CONFIGS),
        help="instruction-set configurations to run, each in its own subprocess",
    )
    parser.add_argument(
        "--threads", type=int, default=THREADS,
        help="threads of both sides (PyTorch's and NumPy's BLAS)",
    )
    parser.add_argument("--output", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--isa-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        n, dtype, max_iter = args.memory_child
        memory_child(int(n), dtype, int(max_iter))
        return
    if args.isa_child is None:  # the parent: one child per configuration
        configs = list(BOTH) if args.isa == "both" else [args.isa]
        results = {"configs": {}}
        for isa in configs:
            print(f"=== {isa}: {ISA_CONFIGS[isa] or 'the environment as it is'}", flush=True)
            child_out = f"{args.output}.{isa}.json"
            argv_child = [a for a in (argv if argv is not None else sys.argv[1:])]
            argv_child = _without(argv_child, "--output", "--isa")
            env = dict(os.environ)
            for key, value in ISA_CONFIGS[isa].items():
                if value is None:
                    env.pop(key, None)
                else:
                    env[key] = value
            subprocess.run(
                [sys.executable, os.path.abspath(__file__), *argv_child,
                 "--isa-child", isa, "--output", child_out],
                env=env, check=True,
            )
            with open(child_out) as f:
                results["configs"][isa] = json.load(f)
            os.remove(child_out)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)
        print_tables(results)
        print(f"\nraw numbers: {args.output}")
        return

    import scipy
    import sklearn
    import threadpoolctl
    import torch

    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    sections = set(args.sections.split(","))
    workloads = {k: WORKLOADS[k] for k in args.workloads.split(",")}
    reps = args.reps or (3 if args.quick else 7)
    if args.quick:  # same shapes, fewer sequences
        workloads = {k: (max(n // 4, 32),) + tuple(rest) for k, (n, *rest) in workloads.items()}
    results = {
        "quick": args.quick,
        "reps": reps,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "torch": torch.__version__,
        },
        "threads": {"torch": torch.get_num_threads(), "blas": threadpoolctl.threadpool_info()},
        "machine": machine(args.isa_child),
    }
    print("Machine: " + describe(results["machine"]), flush=True)
    if sections & {"gemm", "eval"}:
        print("GEMM peak ...", flush=True)
        results["gemm"] = gemm_peak(max(reps, 10))
    if "eval" in sections:
        print("One evaluation, A B A B ...", flush=True)
        results["eval"] = bench_eval(workloads, reps, results["gemm"], args.threads)
    if "predict" in sections:
        print("Prediction, A B A B ...", flush=True)
        results["predict"] = bench_predict(workloads, reps, args.threads)
    if "fit" in sections:
        print("End-to-end fit ...", flush=True)
        results["fit"] = bench_fit(workloads, 3 if args.quick else 10, 1 if args.quick else 3)
    if "memory" in sections:
        print("Memory of fit, one subprocess per size ...", flush=True)
        sizes = (2_000, 5_000, 20_000) if args.quick else MEMORY_SIZES
        results["memory"] = bench_memory(sizes, "float64", 2)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=1)


def _without(argv, *options):
    """``argv`` without the given options and their values."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif not any(a.startswith(o + "=") for o in options):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
