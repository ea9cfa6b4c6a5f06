"""The report of ``interpkit explain``: one self-contained HTML file that opens from disk.

The page holds everything it shows: inline CSS (readable on screen and on paper), a small inline
script that sorts every ``table.sortable`` by a click on a column header, and figures as PNG data
URLs inside the sections. It loads nothing from a server or the network; the only outbound links
are the JASPAR pages of the matrix IDs found in table cells (https://jaspar.elixir.no/matrix/<ID>/).

Layout, top to bottom: title; the warnings of every result (and the methods that failed); a table
of contents; the model (file and its sha256, backend, input spec, outputs, capabilities, checkpoint
record, layer table); the run (options, sequences, interpkit, Python and framework versions, the
plugin behind each result); one section per result, in run order, as its
:meth:`~interpkit.results.Result.report_section` renders it; the methods that did not run, with why.

When the page has loaded, its script writes the number of result sections into the body's
``data-sections`` attribute and the number of images that failed to decode into
``data-broken-images``, so a headless browser (``chromium --headless --dump-dom``) can check it.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from interpkit._io import atomic_write, file_digest
from interpkit.validation import check_scalar

__all__ = ["JASPAR_URL", "link_jaspar_ids", "render_report", "write_report"]

#: Where a JASPAR matrix ID links to; ``{id}`` is replaced by the versioned ID (e.g. MA0139.1).
JASPAR_URL = "https://jaspar.elixir.no/matrix/{id}/"

#: Distributions whose versions the run section lists when installed (read from their metadata,
#: which imports nothing).
_VERSIONED = ("numpy", "scipy", "torch", "captum", "tensorflow", "keras", "tf_keras", "onnx", "onnxruntime",
              "onnxruntime-gpu", "memelite", "pyjaspar", "logomaker", "matplotlib", "jinja2")

_JASPAR_ID = re.compile(r"(?<![A-Za-z0-9])MA\d{4}\.\d+(?![0-9])")
_TAG = re.compile(r"(<!--.*?-->|<[^>]*>)", re.DOTALL)
_TAG_NAME = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9-]*)")
_SECTION_ID = re.compile(r"\A\s*<section\b[^>]*?(?<![\w-])id\s*=\s*(['\"])(.*?)\1", re.DOTALL | re.IGNORECASE)
_OUTPUTS_INLINE = 20  # more outputs than this fold into a <details>


def link_jaspar_ids(fragment: str) -> str:
    """Link every JASPAR matrix ID in the table cells of an HTML fragment to its JASPAR page.

    Parameters
    ----------
    fragment : str
        HTML, e.g. a result's report section.

    Returns
    -------
    str
        The fragment with each versioned ID (``MA\\d{4}\\.\\d+``, e.g. ``MA0139.1``) in the text of a
        ``<td>`` or ``<th>`` wrapped in ``<a class='jaspar' href='https://jaspar.elixir.no/matrix/ID/'>``.
        Tags and their attributes (image ``alt`` texts, data URLs), text outside table cells and text
        already inside a link are left as they are.
    """
    parts = _TAG.split(fragment)
    cell = anchor = 0
    for i in range(len(parts)):
        if i % 2:  # a tag (odd items of a split on one capturing group)
            match = _TAG_NAME.match(parts[i])
            if not match:
                continue
            closing, tag = match.group(1) == "/", match.group(2).lower()
            if tag in ("td", "th"):
                cell = max(cell - 1, 0) if closing else cell + 1
            elif tag in ("tr", "table"):
                cell = 0  # a cell left open by an implied end tag ends with its row
            elif tag == "a":
                anchor = max(anchor - 1, 0) if closing else anchor + 1
        elif cell and not anchor and parts[i]:
            parts[i] = _JASPAR_ID.sub(_jaspar_link, parts[i])
    return "".join(parts)


def _jaspar_link(match: re.Match) -> str:
    ident = match.group(0)
    return f"<a class='jaspar' href='{JASPAR_URL.format(id=ident)}' title='JASPAR {ident}'>{ident}</a>"


def _section(method: str, result: Any, max_rows: int) -> tuple[str, str, str | None]:
    """One result's section as (HTML, anchor id, rendering error or None).

    A section that fails to render, or renders without a leading ``<section id=...>``, is replaced or
    wrapped, so one plugin's bug neither loses the report nor breaks its table of contents.
    """
    esc = html.escape
    try:
        fragment = str(result.report_section(max_rows=max_rows))
    except Exception as exc:  # noqa: BLE001 - a plugin's rendering bug must not lose the whole report
        error = f"its report section failed to render ({type(exc).__name__}: {exc}); its files are complete."
        return (f"<section class='result' id='{esc(method)}'><h2>{esc(method)}</h2>"
                f"<p class='error'>{esc(error)}</p></section>"), method, error
    match = _SECTION_ID.match(fragment)
    if match:
        return link_jaspar_ids(fragment), html.unescape(match.group(2)), None
    return (f"<section class='result' id='{esc(method)}'>{link_jaspar_ids(fragment)}</section>"), method, None


def _versions() -> list[tuple[str, str]]:
    """Python, the platform and the installed versions of :data:`_VERSIONED` (metadata only: no imports)."""
    from importlib import metadata

    found = [("python", platform.python_version()), ("platform", platform.platform())]
    for dist in _VERSIONED:
        try:
            found.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    return found


def _sha256(file: Any, checkpoint: Mapping[str, Any]) -> str | None:
    """The sha256 of the model file: the checkpoint record's when it names the same file, else computed."""
    if not file:
        return None
    path = Path(file)
    if not path.is_file():
        return None  # a SavedModel directory, or not a path at all
    known, named = checkpoint.get("sha256"), checkpoint.get("file")
    if isinstance(known, str) and named:
        try:
            if Path(named).resolve() == path.resolve():
                return known
        except OSError:
            pass
    return file_digest(path, "sha256")


def _plain(value: Any) -> str:
    """A value as one line of text: a string as it is, None as "", the rest as compact JSON (else repr)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def render_report(
    *,
    model: Mapping[str, Any],
    results: Mapping[str, Any],
    skipped: Mapping[str, str],
    run: Mapping[str, Any],
    max_rows: int = 50,
) -> str:
    """The report as one self-contained HTML page (see the module docstring for its layout).

    Parameters
    ----------
    model : mapping
        :func:`interpkit.describe_model` of the model plus ``file`` (the path it was loaded from, or
        None): name, backend, input, outputs, capabilities, checkpoint, layers (list of dicts) and,
        for per-position models, output_reduction.
    results : mapping of str to Result
        By method name, in run order. Each renders its own section
        (:meth:`~interpkit.results.Result.report_section`), trusted HTML whose images are data URLs.
    skipped : mapping of str to str
        Method -> one-line reason it did not run, or how it failed (a reason starting "failed" is
        also listed among the warnings).
    run : mapping
        interpkit version (``interpkit``), ``sequences``, ``n_sequences``, ``options``, ``only``, ``skip``;
        other keys are listed too.
    max_rows : int
        Rows of each result table shown (the TSV files hold all). Default is 50.

    Returns
    -------
    str
        The HTML page. Every name and value from the model, the run and the reasons is escaped; the
        sections are inserted as they are, with JASPAR matrix IDs in their table cells linked
        (:func:`link_jaspar_ids`).

    Raises
    ------
    InputTypeError, InputError
        If ``max_rows`` is not an int >= 1.

    Notes
    -----
    A section that fails to render is replaced by its error message (shown among the warnings) rather
    than losing the report. The model file is hashed with sha256 here unless ``model["checkpoint"]``
    already records the digest of the same file.
    """
    import jinja2
    from markupsafe import Markup

    max_rows = check_scalar(max_rows, "max_rows", int, min_val=1)
    checkpoint = dict(model.get("checkpoint") or {})
    sections, warnings, plugins = [], [], []
    for method, result in results.items():
        body, anchor, error = _section(str(method), result, max_rows)
        prov = getattr(result, "provenance", None) or {}
        plugins.append({"method": str(method), "anchor": anchor, "plugin": str(prov.get("plugin", "")),
                        "distribution": str(prov.get("distribution", "")),
                        "version": str(prov.get("plugin_version", ""))})
        sections.append({"method": str(method), "anchor": anchor, "html": Markup(body),
                         "n_warnings": len(getattr(result, "warnings", ()) or ()) + bool(error)})
        warnings += [{"method": str(method), "anchor": anchor, "text": str(w)}
                     for w in getattr(result, "warnings", ()) or ()]
        if error:
            warnings.append({"method": str(method), "anchor": anchor, "text": error})
    for method, reason in skipped.items():
        if str(reason).startswith("failed"):
            warnings.append({"method": str(method), "anchor": "report-skipped", "text": str(reason)})
    outputs = [str(o) for o in model.get("outputs") or ()]
    facts = [("file", model.get("file") or "(not loaded from a file)"),
             ("sha256", _sha256(model.get("file"), checkpoint) or "(no single file to hash)"),
             ("backend", model.get("backend", "")),
             ("capabilities", ", ".join(map(str, model.get("capabilities") or ())) or "none")]
    if model.get("output_reduction") is not None:
        facts.append(("output reduction", _plain(model["output_reduction"])))
    layers = [dict(row) for row in model.get("layers") or ()]
    layer_columns = list(dict.fromkeys(k for row in layers for k in row))
    run_rows = [("sequences", run.get("sequences", "")), ("number of sequences", run.get("n_sequences", "")),
                ("only", ", ".join(map(str, run.get("only") or ())) or "every method that applies"),
                ("skip", ", ".join(map(str, run.get("skip") or ())) or "none")]
    options = {str(k): _plain(v) for k, v in (run.get("options") or {}).items()}
    known = {"interpkit", "sequences", "n_sequences", "options", "only", "skip"}
    run_rows += [(str(k), _plain(v)) for k, v in run.items() if k not in known]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["pluralize"] = lambda n: "" if n == 1 else "s"
    return env.from_string(_TEMPLATE).render(
        title=f"interpkit report: {model.get('name', 'model')}",
        model_name=str(model.get("name", "model")),
        facts=[(k, _plain(v)) for k, v in facts],
        input_spec=[(str(k), _plain(v)) for k, v in (model.get("input") or {}).items()],
        outputs=outputs, outputs_inline=len(outputs) <= _OUTPUTS_INLINE,
        checkpoint=[(str(k), _plain(v)) for k, v in checkpoint.items()],
        layers=[[_plain(row.get(c, "")) for c in layer_columns] for row in layers],
        layer_columns=layer_columns, interpkit=str(run.get("interpkit", "")),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        run_rows=[(k, _plain(v)) for k, v in run_rows], options=options, versions=_versions(),
        plugins=plugins,
        sections=sections, warnings=warnings, skipped=[(str(k), str(v)) for k, v in skipped.items()],
        max_rows=max_rows, css=Markup(_CSS), js=Markup(_JS),
    )


def write_report(
    path: str | os.PathLike,
    *,
    model: Mapping[str, Any],
    results: Mapping[str, Any],
    skipped: Mapping[str, str],
    run: Mapping[str, Any],
    overwrite: bool = False,
    max_rows: int = 50,
) -> Path:
    """Write the report of a run (``report.html``) atomically; see :func:`render_report`.

    Parameters
    ----------
    path : path-like
        The HTML file; its directory must exist.
    model, results, skipped, run, max_rows
        As :func:`render_report`.
    overwrite : bool
        Whether an existing file may be replaced. Default is False.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If ``path`` exists and ``overwrite`` is False (nothing is rendered), or as :func:`render_report`.
    """
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as handle:
        handle.write(render_report(model=model, results=results, skipped=skipped, run=run, max_rows=max_rows))
    return path


_CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d7dde3; --soft: #f4f6f8; --accent: #1f5f99; --warn: #8a5300;
        --warnbg: #fff6e5; --err: #a61b1b; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1180px; padding: 1.5rem 2rem 4rem; color: var(--fg); background: #fff;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; }
h2 { font-size: 1.3rem; margin: 0 0 .6rem; padding-bottom: .25rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
a { color: var(--accent); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em;
              overflow-wrap: anywhere; }
.subtitle { color: var(--muted); margin: 0 0 1.2rem; }
section { margin: 2rem 0; }
section.result { border-top: 1px solid var(--line); padding-top: 1rem; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1.2rem; }
nav.toc ol { margin: .3rem 0; padding-left: 1.4rem; columns: 2 18rem; }
nav.toc .count { color: var(--warn); font-size: .85em; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-size: .88rem; max-width: 100%; display: block;
        overflow-x: auto; }
th, td { border: 1px solid var(--line); padding: .22rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
tr:nth-child(even) td { background: #fafbfc; }
table.kv th { width: 12rem; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th:hover { background: #e8edf2; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .75em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .75em; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
ul.warnings { background: var(--warnbg); border-left: 4px solid var(--warn); border-radius: 0 6px 6px 0;
              padding: .6rem 1rem .6rem 2rem; }
#report-warnings ul { margin: 0; }
.error { color: var(--err); }
p.versions span { display: inline-block; margin: 0 1.2rem .2rem 0; white-space: nowrap; }
.muted { color: var(--muted); }
details summary { cursor: pointer; color: var(--accent); }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav.toc { break-after: page; }
  section.result { break-before: page; border-top: none; }
  h2, h3 { break-after: avoid; }
  img, tr { break-inside: avoid; }
  table { display: table; overflow: visible; }
  a { color: inherit; text-decoration: none; }
  table.sortable th::after { content: none !important; }
}
"""

# Sorting: a click on a header of a table.sortable orders its body rows by that column (numbers
# numerically, e.g. 1e-05 < 0.2 < 10; text naturally; empty cells last); a second click reverses.
# On load: data-sections and data-broken-images on <body>, for headless checks.
_JS = """
(function () {
  "use strict";
  function key(cell) {
    var text = cell ? cell.textContent.trim() : "";
    var num = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?%?$/i.test(text) ? parseFloat(text) : NaN;
    return {text: text, num: num};
  }
  function compare(a, b) {
    var an = !isNaN(a.num), bn = !isNaN(b.num);
    if (an && bn) { return a.num - b.num; }
    if (an !== bn) { return an ? -1 : 1; }
    return a.text.localeCompare(b.text, undefined, {numeric: true, sensitivity: "base"});
  }
  function headerRow(table) {
    if (table.tHead && table.tHead.rows.length) { return table.tHead.rows[0]; }
    var first = table.rows[0];
    if (!first) { return null; }
    for (var i = 0; i < first.cells.length; i++) {
      if (first.cells[i].tagName !== "TH") { return null; }
    }
    return first;
  }
  function sortBy(table, head, column, th) {
    var rows = Array.prototype.filter.call(table.rows, function (r) {
      var part = r.parentNode;
      return r !== head && part !== table.tHead && part !== table.tFoot;
    });
    if (!rows.length) { return; }
    var descending = th.getAttribute("aria-sort") === "ascending";
    Array.prototype.forEach.call(head.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var keyed = rows.map(function (r, i) { return {row: r, key: key(r.cells[column]), index: i}; });
    keyed.sort(function (x, y) {
      var empty = (x.key.text === "") - (y.key.text === "");
      if (empty) { return empty; }
      var c = compare(x.key, y.key);
      return (descending ? -c : c) || x.index - y.index;
    });
    var parent = rows[0].parentNode;
    keyed.forEach(function (k) { parent.appendChild(k.row); });
  }
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      var head = headerRow(table);
      if (!head) { return; }
      Array.prototype.forEach.call(head.cells, function (th, column) {
        th.setAttribute("tabindex", "0");
        th.title = "Sort by this column";
        th.addEventListener("click", function () { sortBy(table, head, column, th); });
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, head, column, th); }
        });
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  window.addEventListener("load", function () {
    var broken = 0;
    Array.prototype.forEach.call(document.images, function (img) {
      if (img.complete && img.naturalWidth === 0) { broken += 1; }
    });
    document.body.dataset.brokenImages = String(broken);
    document.body.dataset.sections = String(document.querySelectorAll("#report-results > section").length);
  });
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="interpkit {{ interpkit }}">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>interpkit report: {{ model_name }}</h1>
<p class="subtitle">{{ sections|length }} method{{ sections|length|pluralize }} ran,
{{ skipped|length }} did not &middot; interpkit {{ interpkit }} &middot; {{ generated }}</p>
</header>
{% if warnings %}
<section id="report-warnings">
<h2>Warnings ({{ warnings|length }})</h2>
<ul class="warnings">
{% for w in warnings %}
<li><a href="#{{ w.anchor }}">{{ w.method }}</a>: {{ w.text }}</li>
{% endfor %}
</ul>
</section>
{% endif %}
<nav class="toc" id="report-toc" aria-label="Contents">
<strong>Contents</strong>
<ol>
{% if warnings %}
<li><a href="#report-warnings">Warnings ({{ warnings|length }})</a></li>
{% endif %}
<li><a href="#report-model">Model</a></li>
<li><a href="#report-run">Run</a></li>
{% for s in sections %}
<li><a href="#{{ s.anchor }}">{{ s.method }}</a>
{% if s.n_warnings %}
<span class="count">({{ s.n_warnings }} warning{{ s.n_warnings|pluralize }})</span>
{% endif %}
</li>
{% endfor %}
{% if skipped %}
<li><a href="#report-skipped">Methods that did not run ({{ skipped|length }})</a></li>
{% endif %}
</ol>
</nav>
<section id="report-model">
<h2>Model: {{ model_name }}</h2>
<table class="kv">
{% for k, v in facts %}
<tr><th>{{ k }}</th><td class="mono">{{ v }}</td></tr>
{% endfor %}
<tr><th>outputs ({{ outputs|length }})</th><td>
{% if outputs_inline %}{{ outputs|join(", ") }}{% else %}
<details><summary>show all {{ outputs|length }}</summary>{{ outputs|join(", ") }}</details>
{% endif %}
</td></tr>
</table>
{% if input_spec %}
<h3>Input</h3>
<table class="kv">
{% for k, v in input_spec %}
<tr><th>{{ k }}</th><td class="mono">{{ v }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if checkpoint %}
<h3>Checkpoint</h3>
<table class="kv">
{% for k, v in checkpoint %}
<tr><th>{{ k }}</th><td class="mono">{{ v }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if layers %}
<h3>Layers ({{ layers|length }})</h3>
<table class="sortable layers">
<thead><tr>{% for c in layer_columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in layers %}
<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p class="muted">No layer table: this model's backend does not expose its layers.</p>
{% endif %}
</section>
<section id="report-run">
<h2>Run</h2>
<table class="kv">
{% for k, v in run_rows %}
<tr><th>{{ k }}</th><td class="mono">{{ v }}</td></tr>
{% endfor %}
<tr><th>options</th><td class="mono">
{% for m, o in options.items() %}
{{ m }}: {{ o }}{% if not loop.last %}<br>{% endif %}
{% else %}defaults{% endfor %}
</td></tr>
<tr><th>rows per table</th><td>{{ max_rows }} (all rows are in the TSV files)</td></tr>
</table>
<h3>Versions</h3>
<p class="versions">
<span>interpkit <code>{{ interpkit }}</code></span>
{% for k, v in versions %}
<span>{{ k }} <code>{{ v }}</code></span>
{% endfor %}
</p>
{% if plugins %}
<h3>Plugins</h3>
<table class="sortable plugins">
<thead><tr><th>method</th><th>plugin</th><th>distribution</th><th>version</th></tr></thead>
<tbody>
{% for p in plugins %}
<tr><td><a href="#{{ p.anchor }}">{{ p.method }}</a></td><td>{{ p.plugin }}</td>
<td>{{ p.distribution }}</td><td>{{ p.version }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
</section>
<div id="report-results">
{% for s in sections %}
{{ s.html }}
{% endfor %}
</div>
{% if skipped %}
<section id="report-skipped">
<h2>Methods that did not run</h2>
<table class="sortable skipped">
<thead><tr><th>method</th><th>reason</th></tr></thead>
<tbody>
{% for m, r in skipped %}
<tr><td>{{ m }}</td><td>{{ r }}</td></tr>
{% endfor %}
</tbody>
</table>
</section>
{% endif %}
<footer>Made by interpkit {{ interpkit }}. This file is self-contained: it loads nothing from the
network.</footer>
<script>{{ js }}</script>
</body>
</html>
"""
