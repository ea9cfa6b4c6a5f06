"""Logo heights from closed forms; PNG/SVG files that parse; no figures left behind in pyplot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from interpkit.errors import InputError, InputTypeError
from interpkit.logos import logo_heights, plot_logo, save_logo
from interpkit.motifs import Motif

PPM = np.array([[1.0, 0.25, 0.5], [0, 0.25, 0.5], [0, 0.25, 0], [0, 0.25, 0]])  # one-hot A, uniform, A/C


def test_heights_closed_forms():
    info = logo_heights(PPM)
    assert info.shape == (4, 3) and info.dtype == np.float64
    assert np.array_equal(info[:, 0], [2, 0, 0, 0])  # one certain letter: 2 bits
    assert np.array_equal(info[:, 1], [0, 0, 0, 0])  # uniform column: 0 bits
    assert np.allclose(info[:, 2], [0.5, 0.5, 0, 0])  # 1 bit shared by A and C
    assert logo_heights(PPM[:, :1], background=[0.5, 0.2, 0.2, 0.1])[0, 0] == pytest.approx(1.0)
    assert np.array_equal(logo_heights(PPM, kind="probability"), PPM)
    weights = np.array([[-1.5], [0.5], [2.0], [0.0]])
    assert np.array_equal(logo_heights(weights, kind="weight"), weights)


def test_plot_logo_draws_on_given_axes():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    out = plot_logo(Motif("m", PPM), ax=ax, title="m")
    assert out is ax and ax.get_title() == "m" and ax.get_ylabel() == "bits"
    assert ax.get_ylim() == (0.0, 2.0)
    assert len(ax.patches) >= 3  # one glyph per letter drawn with positive height


def test_save_png_and_svg(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    motif = Motif("MA0000.1", PPM, name="TF")
    png = save_logo(motif, tmp_path / "logo.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_logo(np.random.default_rng(0).normal(size=(4, 12)), tmp_path / "attr.SVG", kind="weight")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "MA0000.1 TF" in save_logo(motif, tmp_path / "t.svg").read_text()  # default title
    assert plt.get_fignums() == before  # nothing registered with pyplot, nothing left open
    with pytest.raises(InputError, match="already exists"):
        save_logo(motif, png)
    save_logo(motif, png, kind="probability", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attr.SVG", "logo.png", "t.svg"]  # no temp files


def test_logos_raises(tmp_path):
    cases = [
        (InputError, "kind == 'bits'", lambda: logo_heights(PPM, kind="bits")),
        (InputError, "column 0 sums to 0.5", lambda: logo_heights(PPM * 0.5)),
        (InputError, "negative", lambda: logo_heights(-PPM, kind="probability")),
        (InputError, "only used with kind='information'", lambda: logo_heights(PPM, kind="weight", background=[0.25] * 4)),
        (InputError, r"must be \(4, w\)", lambda: logo_heights(np.ones((5, 3)), kind="weight")),
        (InputError, "alphabet == 'ACGT' but motif m is ACGU",
         lambda: plot_logo(Motif("m", PPM, alphabet="ACGU"), alphabet="ACGT")),
        (InputError, "alphabet == 'XYZW'", lambda: plot_logo(PPM, alphabet="XYZW")),
        (InputTypeError, "title must be str", lambda: plot_logo(PPM, title=3)),
        (InputError, "must end in .png or .svg, found '.pdf'", lambda: save_logo(PPM, tmp_path / "a.pdf")),
        (InputError, "found ''", lambda: save_logo(PPM, tmp_path / "logo")),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert list(tmp_path.iterdir()) == []
