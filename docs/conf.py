"""Sphinx configuration of the sklearn_gatedmem documentation.

Build (from the repository root; warnings are errors)::

    pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html

``-D plot_gallery=0`` skips running the examples (a quick build of the text).
"""

import os
import sys
import tempfile
from pathlib import Path

# The gallery runs the examples in this process. One BLAS thread, as the
# examples' tests used to run them: on a shared 2-core machine the small
# GEMMs of these fits slow down badly when BLAS threads oversubscribe the
# cores (measured on a 2-core machine at load average 8 to 18: the gallery
# took 24 min with two BLAS threads, 2 to 3 min with one). Set before NumPy
# is first imported, below.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy
sys.path.insert(0, str(DOCS / "_ext"))

import sklearn_gatedmem  # noqa: E402

project = "sklearn_gatedmem"
author = "the sklearn_gatedmem developers"
copyright = "the sklearn_gatedmem developers"
release = version = sklearn_gatedmem.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "results_tables",  # docs/_ext: the benchmark tables, read from benchmarks/results/*.json
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5",
                    "sg_execution_times.rst"]
root_doc = "index"
default_role = "literal"  # `x` in the user guide is code, as in the old README

# A broken cross-reference fails the build (with -W). References into other
# projects are not checked: the build needs no network for their inventories.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|numpy|np|scipy|torch|dask|pandas|joblib|matplotlib)(\..*)?"),
    # private modules named in docstrings as where the equations live
    (r"py:mod", r"sklearn_gatedmem\._\w+"),
]

# -- autosummary / numpydoc ---------------------------------------------------
autosummary_generate = True
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# numpydoc checks every public docstring while building; with -W a parameter
# missing from (or misspelt in) a docstring fails the build.
numpydoc_validation_checks = {"PR01", "PR02", "PR10", "GL08"}
# methods inherited from scikit-learn's mixins are theirs to document
numpydoc_validation_exclude = {r"\.(get_params|set_params|__init__)$"}
# scikit-learn's metadata-routing methods: documented by scikit-learn (their
# docstrings refer to its glossary); the class template names them in a line.
autosummary_context = {
    "sklearn_routing": ["get_metadata_routing", "set_fit_request", "set_score_request",
                        "set_predict_request", "set_predict_proba_request",
                        "set_predict_log_proba_request"],
}

# -- sphinx-gallery -----------------------------------------------------------
# The examples save their figure as PNG too; send those copies out of the tree.
os.environ.setdefault("SKLEARN_GATEDMEM_FIGURE_DIR", tempfile.mkdtemp(prefix="gatedmem_fig_"))
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",  # run every example, the quickstart (no plot) too
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_gatedmem",),
    "backreferences_dir": "generated/backreferences",
}

# -- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_gatedmem {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # the pages of wide benchmark tables get the whole width (custom.css)
    "secondary_sidebar_items": {"**": ["page-toc"], "benchmarks": [], "defaults": []},
}
# no section navigation on single pages; the wide benchmark tables get its room
html_sidebars = {page: [] for page in ("index", "install", "getting_started", "benchmarks", "defaults")}
html_show_sourcelink = False


def _check_example_figures(app, exception):
    """After a build that ran the gallery, every plotting example must have
    saved its PNG into $SKLEARN_GATEDMEM_FIGURE_DIR (tests/test_examples.py
    checks statically that each one saves exactly one there)."""
    import re

    from sphinx.errors import ExtensionError

    if exception is not None:
        return
    # the examples this build ran (an unchanged one is not rerun in a rebuild)
    ran = app.config.sphinx_gallery_conf.get("passing_examples", [])
    figure_dir = Path(os.environ["SKLEARN_GATEDMEM_FIGURE_DIR"])
    pattern = re.compile(r"""savefig\(\s*figure_dir\s*/\s*["'](\w+\.png)["']""")
    missing = [name for script in map(Path, ran)
               for name in pattern.findall(script.read_text())
               if not (figure_dir / name).is_file()]
    if missing:
        raise ExtensionError(f"examples ran but did not save {missing} into {figure_dir}")


def setup(app):
    app.connect("build-finished", _check_example_figures)
