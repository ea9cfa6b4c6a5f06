"""The HTML report of ``interpkit explain``: parsed back with the stdlib HTML parser, and opened in
headless Chromium where one is installed (images decode, sections count, tables sort).

Oracles: the page's own anchors (every contents link must land on an id), the JASPAR URL scheme
(https://jaspar.elixir.no/matrix/<ID>/), :mod:`hashlib` for the model file's sha256, the installed
numpy's version, and, in the browser, a deliberately broken image that must be counted.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError
from interpkit.report import JASPAR_URL, link_jaspar_ids, render_report, write_report
from interpkit.results import Result, png_img
from interpkit.tables import Table

HOSTILE = "<script>alert(1)</script>"
JASPAR = "https://jaspar.elixir.no/matrix/"
PPM = np.array([[0.9, 0.1, 0.0, 0.25], [0.1, 0.8, 0.0, 0.25], [0.0, 0.1, 1.0, 0.25], [0.0, 0.0, 0.0, 0.25]])


@dataclass(frozen=True)
class _FigureResult(Result):
    """A result whose section carries a logo (a real PNG) and prose that names a JASPAR ID."""

    png: bytes = b""

    def report_section(self, *, max_rows: int = 50) -> str:
        base = super().report_section(max_rows=max_rows).removesuffix("</section>")
        prose = "<p>Closest: MA0000.9 (prose, not a table cell)</p>"
        return f"{base}{prose}{png_img(self.png, 'MA0139.1 logo')}</section>"


@dataclass(frozen=True)
class _BrokenResult(Result):
    """A third-party result whose section rendering has a bug."""

    def report_section(self, *, max_rows: int = 50) -> str:
        raise RuntimeError("renderer bug")


class _Page(HTMLParser):
    """Every element's tag and attributes, in document order, and the text outside <script>/<style>."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._open: list[str] = []
        self._anchor: list[str] | None = None
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._open.append(tag)
        if tag == "a":
            self._anchor = []

    def handle_endtag(self, tag):
        if tag == "a" and self._anchor is not None:
            href = next(a.get("href") for t, a in reversed(self.elements) if t == "a")
            self.links.append((href, "".join(self._anchor)))
            self._anchor = None
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag):]

    def handle_data(self, data):
        inside = self._open[-1] if self._open else ""
        if inside in self.raw:
            self.raw[inside].append(data)
        else:
            self.text.append(data)
            if self._anchor is not None:
                self._anchor.append(data)

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.elements if a.get("id")]

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag]

    def plain(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def logo() -> bytes:
    from interpkit.logos import logo_png

    return logo_png(PPM, kind="information", title="test logo", dpi=40)


def _inputs(tmp: Path, logo: bytes) -> dict:
    weights = tmp / "model.bin"
    weights.write_bytes(b"not really weights")
    tomtom = Table(("Query_ID", "Target_ID", "p-value"), [
        ("filter0", "MA0139.1", 0.2), ("filter1", "MA0035.4", 1e-05), ("filter2", "MA1102.3", 10),
        ("filter3", None, None), ("filter4", "MA0139.1", 0.003),
    ])
    results = {
        "filter_motifs": _FigureResult("filter_motifs", tables={"tomtom": tomtom}, params={"top": 3},
                                       warnings=("only 2 sequences: PPMs are noisy",), png=logo,
                                       provenance={"plugin": "filter_motifs", "distribution": "interpkit",
                                                   "plugin_version": "0.1.0"}),
        HOSTILE: Result(HOSTILE, params={"name": "<b>bold</b>"}, sequence_names=(HOSTILE,),
                        warnings=("<img src=x onerror=alert(2)>",),
                        tables={"t": Table(("name",), [(HOSTILE,)])}),
    }
    return {
        "model": {"name": f"model {HOSTILE}", "backend": "numpy", "file": str(weights),
                  "input": {"alphabet": "ACGT", "length": 200, "layout": "NCL"},
                  "outputs": ["CTCF", "<i>out</i>"], "capabilities": ["layers", "predict"],
                  "checkpoint": {"format": "test"},
                  "layers": [
                      {"index": 0, "name": "conv1", "kind": "conv", "pool_size": None, "receptive_field": 19},
                      {"index": 1, "name": "fc", "kind": "linear", "pool_size": 7, "receptive_field": "all"},
                  ]},
        "results": results,
        "skipped": {"neuronmotif": "needs layers, which this model's backend does not provide",
                    "gia": "failed: background model diverged", f"x{HOSTILE}": "switched off (--skip)"},
        "run": {"interpkit": "0.1.0", "sequences": f"seqs{HOSTILE}.fa", "n_sequences": 2,
                "options": {"gia": {"n_backgrounds": 5}}, "only": None, "skip": ["saliency"]},
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory, logo) -> tuple[Path, dict, _Page]:
    tmp = tmp_path_factory.mktemp("report")
    inputs = _inputs(tmp, logo)
    path = write_report(tmp / "report.html", **inputs, overwrite=False)
    return path, inputs, _Page(path.read_text(encoding="utf-8"))


def test_sections_in_order_with_contents_that_resolve(report):
    _, inputs, page = report
    sections = [a["id"] for a in page.all("section") if "result" in (a.get("class") or "").split()]
    assert sections == list(inputs["results"])  # one per result, in run order, each with its id
    ids = page.ids()
    assert len(ids) == len(set(ids))
    internal = [href for href, _ in page.links if href.startswith("#")]
    assert internal and all(href[1:] in ids for href in internal)  # every contents link lands
    assert {f"#{m}" for m in inputs["results"]} <= set(internal)
    for fixed in ("report-model", "report-run", "report-warnings", "report-skipped"):
        assert f"#{fixed}" in internal
    # warnings first, then the model, the run, the results and the methods that did not run
    parts = ("report-warnings", "report-model", "report-run", *sections, "report-skipped")
    assert [ids.index(i) for i in parts] == sorted(ids.index(i) for i in parts)


def test_warnings_and_skipped_reasons_shown(report):
    _, inputs, page = report
    text = page.plain()
    for reason in inputs["skipped"].values():
        assert reason in text
    for name in inputs["skipped"]:
        assert name in text
    warnings = text[text.index("Warnings (3)"):text.index("Contents")]  # 2 result warnings + 1 failure
    assert "only 2 sequences: PPMs are noisy" in warnings
    assert "<img src=x onerror=alert(2)>" in warnings  # shown as text, not markup
    assert "failed: background model diverged" in warnings


def test_model_identity_and_versions(report):
    _, inputs, page = report
    text = page.plain()
    assert hashlib.sha256(b"not really weights").hexdigest() in text
    assert inputs["model"]["file"] in text
    assert "conv1" in text and "receptive_field" in text and "<i>out</i>" in text
    cells = [a for a in page.all("table") if "layers" in (a.get("class") or "")]
    assert cells and "sortable" in cells[0]["class"]
    assert "null" not in text and "None" not in text  # an absent value is an empty cell
    assert f"numpy{np.__version__}" in re.sub(r"\s+", "", text)
    assert f"python{platform.python_version()}" in re.sub(r"\s+", "", text)
    assert "n_backgrounds" in text and "saliency" in text  # the run's options and --skip


def test_sha256_reused_from_checkpoint_record(tmp_path, logo):
    inputs = _inputs(tmp_path, logo)
    inputs["model"]["checkpoint"] = {"file": inputs["model"]["file"], "sha256": "f" * 64}
    assert "f" * 64 in render_report(**inputs)  # the loader's record of the same file, not hashed again
    inputs["model"]["file"] = str(tmp_path)  # a directory (SavedModel): nothing to hash
    assert "(no single file to hash)" in render_report(**inputs)


def test_jaspar_ids_in_table_cells_link_to_jaspar(report):
    _, _, page = report
    jaspar = [(href, text) for href, text in page.links if href.startswith("https://")]
    assert sorted(set(jaspar)) == sorted(
        (f"{JASPAR}{i}/", i) for i in ("MA0139.1", "MA0035.4", "MA1102.3")
    )
    assert JASPAR_URL.format(id="MA0139.1") == f"{JASPAR}MA0139.1/"
    assert [a["alt"] for a in page.all("img")] == ["MA0139.1 logo"]  # attribute left alone
    assert "Closest: MA0000.9" in page.plain() and not any("MA0000.9" in h for h, _ in page.links)


def test_link_jaspar_ids_cases():
    link = "<a class='jaspar' href='https://jaspar.elixir.no/matrix/{0}/' title='JASPAR {0}'>{0}</a>"
    cases = {
        "<td>MA0139.1</td>": f"<td>{link.format('MA0139.1')}</td>",
        "<td>MA0139.1, MA0035.12</td>": f"<td>{link.format('MA0139.1')}, {link.format('MA0035.12')}</td>",
        "<th scope='row'>MA0139.1 (CTCF)</th>": f"<th scope='row'>{link.format('MA0139.1')} (CTCF)</th>",
        "<td><a href='#x'>MA0139.1</a></td>": "<td><a href='#x'>MA0139.1</a></td>",  # already a link
        "<td><img alt='MA0139.1'></td>": "<td><img alt='MA0139.1'></td>",  # an attribute
        "<p>MA0139.1</p>": "<p>MA0139.1</p>",  # not a table cell
        "<td>XMA0139.1 MA139.1 MA0139</td>": "<td>XMA0139.1 MA139.1 MA0139</td>",  # not IDs
        "<tr><td>a<tr><td>MA0139.1": f"<tr><td>a<tr><td>{link.format('MA0139.1')}",  # implied end tags
    }
    for fragment, expected in cases.items():
        assert link_jaspar_ids(fragment) == expected, fragment


def test_self_contained(report):
    path, _, page = report
    body = path.read_text(encoding="utf-8")
    assert all(a["src"].startswith("data:image/png;base64,") for a in page.all("img"))
    for tag, attr in (("a", "href"), ("link", "href"), ("script", "src"), ("iframe", "src"),
                      ("source", "src")):
        for a in page.all(tag):
            value = a.get(attr)
            assert value is None or value.startswith(("#", JASPAR)), (tag, value)
    assert not page.all("link") and all("src" not in a for a in page.all("script"))
    assert set(re.findall(r"https?://[^\s'\"<>]+", body)) <= {f"{JASPAR}{i}/" for i in
                                                             ("MA0139.1", "MA0035.4", "MA1102.3")}
    assert "url(" not in "".join(page.raw["style"]) and "@import" not in "".join(page.raw["style"])


def test_hostile_names_are_escaped(report):
    path, _, page = report
    body = path.read_text(encoding="utf-8")
    assert len(page.all("script")) == 1  # the report's own, inline
    assert HOSTILE not in body and "<b>bold</b>" not in body and "<i>out</i>" not in body
    assert not any("onerror" in a for _, a in page.elements)
    text = page.plain()
    for shown in (f"model {HOSTILE}", f"seqs{HOSTILE}.fa", f"x{HOSTILE}", "<b>bold</b>", HOSTILE):
        assert shown in text
    assert HOSTILE in page.ids()  # the id is the method name, unescaped by the parser as a browser does
    assert f"#{HOSTILE}" in [h for h, _ in page.links]


def test_broken_section_does_not_lose_the_report(tmp_path, logo):
    inputs = _inputs(tmp_path, logo)
    inputs["results"] = {"third_party": _BrokenResult("third_party"), **inputs["results"]}
    page = _Page(render_report(**inputs))
    sections = [a["id"] for a in page.all("section") if "result" in (a.get("class") or "").split()]
    assert sections == list(inputs["results"])
    assert "report section failed to render (RuntimeError: renderer bug)" in page.plain()


def test_section_without_id_is_wrapped(tmp_path, logo):
    @dataclass(frozen=True)
    class Bare(Result):
        def report_section(self, *, max_rows: int = 50) -> str:
            return "<h2>bare</h2><table><tr><th>t</th></tr><tr><td>MA0139.1</td></tr></table>"

    inputs = _inputs(tmp_path, logo)
    inputs["results"] = {"bare": Bare("bare")}
    page = _Page(render_report(**inputs))
    assert [a["id"] for a in page.all("section") if "result" in (a.get("class") or "")] == ["bare"]
    assert (f"{JASPAR}MA0139.1/", "MA0139.1") in page.links


def test_refuses_to_overwrite(tmp_path, logo):
    inputs = _inputs(tmp_path, logo)
    path = write_report(tmp_path / "report.html", **inputs)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(InputError, match="already exists"):
        write_report(path, **inputs)
    assert path.read_text(encoding="utf-8") == before
    inputs["skipped"] = {"ism": "a new reason"}
    assert write_report(path, **inputs, overwrite=True) == path
    assert "a new reason" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "report.html"]  # no temp files


def test_report_raises(tmp_path, logo):
    inputs = _inputs(tmp_path, logo)
    cases = [
        (InputError, "max_rows == 0", lambda: render_report(**inputs, max_rows=0)),
        (InputTypeError, "max_rows must be int", lambda: render_report(**inputs, max_rows="5")),
        (FileNotFoundError, "absent", lambda: write_report(tmp_path / "absent" / "report.html", **inputs)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=re.escape(message)):
            call()


# -- in a real browser -------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")


def _chromium(tmp: Path, *args: str) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _body(dom: str) -> dict[str, str | None]:
    bodies = _Page(dom).all("body")
    assert len(bodies) == 1, dom[:500]
    return bodies[0]


@needs_chromium
def test_chromium_renders_every_image_and_section(report, tmp_path):
    path, inputs, _ = report
    body = _body(_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", path.as_uri()))
    assert body.get("data-broken-images") == "0"
    assert body.get("data-sections") == str(len(inputs["results"]))


@needs_chromium
def test_chromium_counts_a_broken_image_and_sorts_tables(report, tmp_path):
    # The same page plus an image that cannot decode and a script that clicks the p-value header twice:
    # proves the counter can see a broken image and that sorting is numeric with empty cells last.
    path, inputs, _ = report
    probe = """<img alt="broken on purpose" src="data:image/png;base64,AAAA">
<script>
window.addEventListener("load", function () {
  var table = document.querySelector("section.result table.sortable");
  var th = table.rows[0].cells[2];
  function column() {
    var rows = Array.prototype.slice.call(table.rows, 1);
    return rows.map(function (r) { return r.cells[2].textContent; }).join("|");
  }
  th.click(); document.body.dataset.ascending = column();
  th.click(); document.body.dataset.descending = column();
  var layers = document.querySelector("table.layers");  // header in <thead>
  layers.tHead.rows[0].cells[0].click();
  layers.tHead.rows[0].cells[0].click();
  document.body.dataset.layers = Array.prototype.map.call(layers.tBodies[0].rows, function (r) {
    return r.cells[1].textContent; }).join("|");
});
</script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(path.read_text(encoding="utf-8").replace("</body>", probe), encoding="utf-8")
    body = _body(_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()))
    assert body.get("data-broken-images") == "1"
    assert body.get("data-sections") == str(len(inputs["results"]))
    assert body.get("data-ascending") == "1e-05|0.003|0.2|10|"
    assert body.get("data-descending") == "10|0.2|0.003|1e-05|"
    assert body.get("data-layers") == "fc|conv1"  # by index, descending


@needs_chromium
def test_chromium_screenshot(report, tmp_path):
    from matplotlib.image import imread

    path, _, _ = report
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(shot)
    assert pixels.shape[1] >= 1280 and pixels.shape[0] >= 2000 and pixels.std() > 0.01  # not a blank page
    artifacts = os.environ.get("INTERPKIT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report_screenshot.png")
        shutil.copy(path, Path(artifacts) / "report.html")
