"""Worker for baselines whose dependencies (aeon, numba) are not importable in
the interpreter that runs ``accuracy.py``: run there by another interpreter
(``--aux-python`` / ``$SKLEARN_GATEDMEM_BENCH_AUX_PYTHON``), e.g. a separate
venv with aeon 1.6.0 installed. Not for direct use.

    python _aux.py MODEL in.npz out.json

``in.npz`` holds ``X_train``, ``X_test`` (zero-padded ``(n, T, d)``),
``len_train``, ``len_test``, ``y_train``, ``task``, ``seed``, ``threads``;
``out.json`` gets ``pred``, ``fit_s``, ``predict_s``.
"""

import json
import os
import sys


def main():
    model, src, dst = sys.argv[1:4]
    import numpy as np

    d = np.load(src, allow_pickle=True)
    threads = int(d["threads"])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _baselines

    out = _baselines.run_external(model, d)
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
