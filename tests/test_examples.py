"""The scripts in examples/ are sphinx-gallery examples.

Who runs them: the documentation build (``python -m sphinx -W -b html docs
docs/_build/html``, which ``.ci/run`` does after the tests) executes every
example once, shows its output and figures in the gallery, and fails on any
exception or warning-as-error in a script; its ``build-finished`` hook
(docs/conf.py) then checks that each plotting example saved its PNG into
``$SKLEARN_GATEDMEM_FIGURE_DIR``. Running them here as well would run each
example twice in CI, a few minutes on two cores, for nothing the gallery does
not check. So these tests check, without running anything, what the gallery
and that hook rely on: a titled docstring first, ``# %%`` cells, and one
``savefig(figure_dir / "<name>.png")`` into the figure directory for every
plotting example. To run one example alone: ``python examples/<name>.py``.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
SAVEFIG = re.compile(r"""savefig\(\s*figure_dir\s*/\s*["'](\w+\.png)["']""")
FIGURE_DIR = 'Path(os.environ.get("SKLEARN_GATEDMEM_FIGURE_DIR", "."))'


def test_there_are_examples_and_a_gallery_header():
    assert len(EXAMPLES) >= 7
    assert (ROOT / "examples" / "README.txt").read_text().splitlines()[1].startswith("===")


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_a_gallery_script(script):
    source = script.read_text()
    tree = ast.parse(source)  # a syntax error fails here, before the docs build
    docstring = ast.get_docstring(tree, clean=False)
    assert docstring is not None, "sphinx-gallery needs a docstring first"
    lines = docstring.strip("\n").splitlines()
    assert len(lines) >= 3 and lines[1] == "=" * len(lines[0]), "a title underlined with ="
    assert "\n# %%\n" in source, "cells separated by # %%"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_plotting_example_saves_one_figure_into_the_figure_dir(script):
    source = script.read_text()
    if "matplotlib" not in source:
        assert not SAVEFIG.search(source)
        return
    assert FIGURE_DIR in source, "figures go to $SKLEARN_GATEDMEM_FIGURE_DIR"
    figures = SAVEFIG.findall(source)
    assert len(figures) == 1, figures


def test_figure_names_are_distinct():
    names = [name for p in EXAMPLES for name in SAVEFIG.findall(p.read_text())]
    assert len(names) == len(set(names))
