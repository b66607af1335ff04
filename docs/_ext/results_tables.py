"""The documentation's benchmark tables, rendered from benchmarks/results/*.json.

Each table is regenerated at build time by the benchmark scripts' own table
code (``accuracy.table_rows``, ``defaults.table_rows``), so a new result file
changes the page without retyping a number. Directives:

``.. accuracy-table:: series|table``
    ``:files:`` the saved runs of ``benchmarks/accuracy.py`` to merge, in
    order (later files' models replace earlier ones'), as its
    ``--from-json`` does.
``.. curves-table::``
    the learning curves of ``benchmarks/accuracy.py --curves``: every
    ``benchmarks/results/curves/*.json`` merged (``accuracy.merged_cells``)
    and tabulated by ``accuracy.curves_rows``; ``:tags:`` the LSTM columns
    (default ``lstm``, the package defaults).
``.. defaults-table:: results/defaults_x.json``
    one run of ``benchmarks/defaults.py``.
``.. cluster-table::`` and ``.. cluster-plan-table::``
    ``benchmarks/results/cluster.json``: the measured evaluations, and the
    plan for 10 million sequences computed from them.

At ``builder-inited`` it also checks that the API reference lists every
public name of ``sklearn_gatedmem.__all__`` and ``sklearn_gatedmem.datasets``.
"""

import json
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)
BENCHMARKS = ROOT / "benchmarks"


def _benchmark_module(name):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return __import__(name)


def _cell(text):
    """A table cell's reStructuredText: the text as it is, nothing markup."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")


def list_table(header, body, widths="auto", literal_first=False):
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}",
             "   :class: results-table", ""]
    for row in [header] + body:
        for j, text in enumerate(row):
            cell = f"``{text}``" if literal_first and j == 0 and row is not header else _cell(text)
            lines.append(("   * - " if j == 0 else "     - ") + cell)
    return lines


class _TableDirective(SphinxDirective):
    def _load(self, relative):
        path = (BENCHMARKS / relative).resolve()
        if not path.is_file():
            raise self.error(f"no results file {path}")
        self.env.note_dependency(str(path))
        return path

    def _render(self, lines):
        container = nodes.container(classes=["results-table-wrapper"])
        nested_parse_with_titles(self.state, StringList(lines, source=self.get_source_info()[0]),
                                 container)
        return [container]


def _source_line(paths, headers):
    described = []
    for path, header in zip(paths, headers):
        package = header.get("package", {})
        described.append(f"``benchmarks/{path}`` (package {package.get('commit') or 'snapshot'}"
                         + (f", run {header['started']}" if header.get("started") else "") + ")")
    return "Generated at build time from " + ", ".join(described) + "."


class AccuracyTable(_TableDirective):
    required_arguments = 1  # "series" or "table"
    option_spec = {"files": directives.unchanged_required}

    def run(self):
        accuracy = _benchmark_module("accuracy")
        relative = [f.strip() for f in self.options["files"].split(",") if f.strip()]
        paths = [self._load(f) for f in relative]
        results, sets, models = accuracy.merge_saved([str(p) for p in paths])
        table = accuracy.table_rows(results, sets, models, self.arguments[0])
        if table is None:
            raise self.error(f"no {self.arguments[0]!r} data set in {relative}")
        header, body, notes = table
        headers = [json.loads(p.read_text())["header"] for p in paths]
        lines = list_table(header, body) + [""]
        lines += [f"* {_cell(note)}" for note in notes] + ["", _cell(accuracy.LEGEND), "",
                                                          _source_line(relative, headers)]
        return self._render(lines)


class CurvesTable(_TableDirective):
    option_spec = {"tags": directives.unchanged_required}

    def run(self):
        accuracy = _benchmark_module("accuracy")
        directory = BENCHMARKS / "results" / "curves"
        files = sorted(p.name for p in directory.glob("*.json"))
        if not files:
            raise self.error(f"no results file in {directory}")
        for name in files:
            self._load(f"results/curves/{name}")
        tags = [t.strip() for t in self.options.get("tags", "lstm").split(",") if t.strip()]
        header, body = accuracy.curves_rows(accuracy.merged_cells(str(directory)), tags)
        commits = sorted({rec.get("commit") for name in files for rec in json.loads(
            (directory / name).read_text())["cells"].values() if rec.get("commit")})
        lines = list_table(header, body) + [
            "", _cell(accuracy.CURVES_LEGEND), "",
            "Generated at build time from " + ", ".join(
                f"``benchmarks/results/curves/{name}``" for name in files)
            + f" (package commits {', '.join(commits)})."]
        return self._render(lines)


class DefaultsTable(_TableDirective):
    required_arguments = 1

    def run(self):
        defaults = _benchmark_module("defaults")
        path = self._load(self.arguments[0])
        saved = json.loads(path.read_text())
        tasks = {name: s["task"] for name, s in saved["sets"].items()}
        seeds = saved["header"]["seeds"]
        header, body = defaults.table_rows(saved["configs"], tasks, seeds)
        lines = list_table(header, body, literal_first=True) + [
            "", f"{seeds} seeds (``random_state`` 0 to {seeds - 1}); cells: mean ± std "
            "(mean fit seconds); †: a fit hit the time limit; err: failed (see the JSON). "
            + _source_line([self.arguments[0]], [saved["header"]])]
        return self._render(lines)


def _cluster():
    return json.loads((BENCHMARKS / "results" / "cluster.json").read_text())


class ClusterTable(_TableDirective):
    def run(self):
        self._load("results/cluster.json")
        saved = _cluster()
        header = ["sequences", "blocks", "cluster s/eval (workers' CPU s)",
                  "local s/eval, 1 thread (CPU s)", "worker-to-worker bytes/eval (measured)",
                  "client ↔ cluster bytes/eval (by size)", "client peak growth"]
        body = []
        for run in saved["eval"]:
            c, local = run["cluster"], run["local"][0]
            body.append([f"{run['n']:,}", str(c["n_blocks"]),
                         f"{c['eval_median_s']:.2f} ({c['workers_cpu_s']:.2f})",
                         f"{local['eval_median_s']:.2f} ({local['cpu_s']:.2f})",
                         f"{c['worker_to_worker_bytes'] / 1000:.0f} kB",
                         f"{c['client_bytes'] / 1000:.0f} kB",
                         f"{run['client_peak_growth_mb']:.0f} MB"])
        lines = list_table(header, body) + [
            "", f"Machine: {_cell(saved['machine'])}; {saved['workers']} workers; blocks of "
            f"{saved['rows_per_block']:,} sequences. " + _source_line(["results/cluster.json"], [{}])]
        return self._render(lines)


# The plan's assumptions (see the page's prose): 10 million sequences of the
# measured shape, blocks of 100,000, 220 evaluations for a fit of 200
# iterations, 1 ms of scheduler time per worker task and 35 ms to send the
# blocks' gradients to one worker.
PLAN = dict(n=10_000_000, x_gb=20.5, task_s=0.001, gradients_s=0.035, evaluations=220)


def plan_rows(saved, workers=(8, 32, 128)):
    largest = max(saved["eval"], key=lambda run: run["n"])
    per_sequence = largest["cluster"]["workers_cpu_s"] / largest["n"]  # worker CPU s
    fixed_base = min(o["eval_median_s"] for o in saved["overhead"])
    body = []
    for w in workers:
        compute = PLAN["n"] * per_sequence / w
        fixed = fixed_base + PLAN["task_s"] * w + PLAN["gradients_s"]
        per_fit = (compute + fixed) * PLAN["evaluations"]
        per_fit = f"{per_fit / 3600:.1f} h" if per_fit >= 2 * 3600 else f"{per_fit / 60:.0f} min"
        body.append([str(w), f"{PLAN['x_gb'] / w:.2g} GB", f"{compute:.1f}", f"{fixed:.2f}",
                     f"{compute + fixed:.1f}", per_fit])
    return per_sequence, fixed_base, body


class ClusterPlanTable(_TableDirective):
    def run(self):
        self._load("results/cluster.json")
        per_sequence, fixed_base, body = plan_rows(_cluster())
        header = ["workers", "X per worker", "compute s/eval", "fixed s/eval",
                  "s per evaluation", f"per fit ({PLAN['evaluations']} evaluations)"]
        lines = list_table(header, body) + [
            "", f"Computed at build time from ``benchmarks/results/cluster.json``: "
            f"{per_sequence * 1e6:.0f} µs of worker CPU per sequence and evaluation, "
            f"a fixed cost of {fixed_base * 1000:.0f} ms per evaluation."]
        return self._render(lines)


def check_api_reference(app):
    """Fail the build when a public name is missing from the API reference."""
    import sklearn_gatedmem
    import sklearn_gatedmem.datasets

    text = (Path(app.srcdir) / "api.rst").read_text()
    listed = set(re.findall(r"^   ([A-Za-z_][A-Za-z0-9_]*)\s*$", text, flags=re.M))
    public = {n for n in sklearn_gatedmem.__all__ if n != "__version__"}
    public |= set(sklearn_gatedmem.datasets.__all__)
    missing = sorted(public - listed)
    if missing:  # a warning, so an error under -W, with the message on one line
        logger.warning(f"docs/api.rst does not list the public names {missing}",
                       type="api", subtype="missing", location="api")


def setup(app):
    app.add_directive("accuracy-table", AccuracyTable)
    app.add_directive("curves-table", CurvesTable)
    app.add_directive("defaults-table", DefaultsTable)
    app.add_directive("cluster-table", ClusterTable)
    app.add_directive("cluster-plan-table", ClusterPlanTable)
    app.connect("builder-inited", check_api_reference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
