"""Every script in examples/ runs headless and writes its figure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# The figure each plotting example writes; scripts without one only print.
FIGURES = {
    "plot_aeon_layouts.py": "aeon_layouts.png",
    "plot_airline_forecast.py": "airline_forecast.png",
    "plot_attributions.py": "attributions.png",
    "plot_digits_sequences.py": "digits_sequences.png",
    "plot_grid_search.py": "grid_search.png",
    "plot_loss_curves.py": "loss_curves.png",
    "plot_tables.py": "tables.png",
}


def test_every_plotting_example_is_listed():
    plotting = {p.name for p in EXAMPLES if "matplotlib" in p.read_text()}
    assert plotting == set(FIGURES)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    figure = FIGURES.get(script.name)
    if figure is not None:
        pytest.importorskip("matplotlib")
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("SKLEARN_GATEDMEM_FIGURE_DIR", None)  # figures go to the cwd
    # one BLAS thread per process: small GEMMs on a shared 2-core machine
    # slow down badly when threads oversubscribe the cores
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    result = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should print what it found"
    if figure is not None:
        png = tmp_path / figure
        assert png.is_file(), f"{script.name} wrote no {figure}"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_dir_from_the_environment(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figures"
    out.mkdir()
    env = dict(os.environ, MPLBACKEND="Agg", SKLEARN_GATEDMEM_FIGURE_DIR=str(out))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    script = ROOT / "examples" / "plot_loss_curves.py"
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "loss_curves.png").is_file()
    assert not (tmp_path / "loss_curves.png").exists()
