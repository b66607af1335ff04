"""The airline passengers series shipped inside the package."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sklearn_gatedmem.datasets import load_airline

ROOT = Path(__file__).resolve().parents[1]


def test_airline_values_match_box_and_jenkins():
    airline = load_airline()
    data = airline.data
    assert data.shape == (144,) and data.dtype == np.float64
    assert data.sum() == 40363
    assert data[:12].sum() == 1520
    np.testing.assert_array_equal(data[:12], [112, 118, 132, 129, 121, 135, 148, 148,
                                              136, 119, 104, 118])
    np.testing.assert_array_equal(data[-12:], [417, 391, 419, 461, 472, 535, 622, 606,
                                               508, 461, 390, 432])
    # yearly totals: a steady trend
    yearly = data.reshape(12, 12).sum(axis=1)
    assert np.all(np.diff(yearly) > 0)
    assert (data.min(), data.max()) == (104, 622)


def test_airline_dates_are_the_months_1949_to_1960():
    airline = load_airline()
    expected = np.arange("1949-01", "1961-01", dtype="datetime64[M]")
    np.testing.assert_array_equal(airline.dates, expected)
    assert "Box" in airline.DESCR and "thousands" in airline.DESCR


def test_each_call_returns_fresh_arrays():
    first = load_airline()
    first.data[:] = 0
    assert load_airline().data.sum() == 40363


def test_the_wheel_ships_the_data_file(tmp_path):
    """A non-editable install must contain the CSV (package_data in setup.cfg)."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel", reason="pip wheel without build isolation")
    # build from a copy, so the source tree gets no build/ or egg-info
    source = tmp_path / "src"
    shutil.copytree(
        ROOT, source,
        ignore=shutil.ignore_patterns(".git", ".ci", "build", "*.egg-info",
                                      "__pycache__", "*.png", "benchmarks"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("sklearn_gatedmem-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sklearn_gatedmem/datasets/data/airline_passengers.csv" in names
