"""Build throwaway installed distributions (dist-info + modules) in a directory for plugin tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_dist(root: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Write ``<name>-<version>.dist-info`` with ``interpkit`` entry points, plus module files, under root."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[interpkit]\n{lines}\n")
    for module, source in modules.items():
        path = root / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root
