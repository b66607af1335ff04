"""What ships beside the code: setup.cfg declares every third-party package
the code imports, and the README's results table is the one its command
generates from benchmarks/results."""

import ast
import configparser
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
# imported only on request, inside try/except ImportError, with an install hint
# (dask and distributed: only when a dask collection is passed, see _dask.py)
OPTIONAL = {"torch", "dask", "distributed"}


def _imported_top_level_names():
    names = set()
    for path in (ROOT / "sklearn_gatedmem").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"sklearn_gatedmem"}


def test_install_requires_declares_every_import():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = {
        re.split(r"[<>=!~ ]", line.strip())[0].lower()
        for line in config["options"]["install_requires"].splitlines()
        if line.strip()
    }
    needed = {DISTRIBUTIONS.get(name, name).lower() for name in _imported_top_level_names()}
    assert "threadpoolctl" in needed  # the scan sees _base's import
    assert needed - {n.lower() for n in OPTIONAL} <= declared, sorted(needed - declared)


def test_dask_extra_declares_what_a_fit_on_a_cluster_needs():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    for extra in ("dask", "test"):  # the tests run on a LocalCluster in CI
        declared = [line.strip() for line in extras[extra].splitlines() if line.strip()]
        # dask's own "distributed" extra, not distributed apart: only dask's
        # extra pins distributed to the same release (pip once paired dask
        # 2026.11 with distributed 2021.4.1, which cannot import it)
        assert "dask[array,distributed]" in declared, (extra, declared)
        assert not any(re.match(r"distributed\b", line) for line in declared), declared


def test_the_readme_table_is_what_its_command_generates():
    """``python benchmarks/accuracy.py --render-curves --sizes full --readme
    README.md`` writes it; a results file changed without it fails here."""
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", ROOT / "benchmarks" / "accuracy.py"
    )
    accuracy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy)
    readme = (ROOT / "README.md").read_text()
    start, end = (readme.index(marker) for marker in accuracy.README_MARKERS)
    table = readme[start + len(accuracy.README_MARKERS[0]):end].strip()
    expected = accuracy.curves_table(accuracy.merged_cells(), ["lstm"], ["full"])
    assert table == expected.strip()
    assert "| PLAID | full (537) |" in table  # every development set at full size
