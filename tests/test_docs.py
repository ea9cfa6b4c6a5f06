"""Meta-tests: every hook is documented and tested; every public name has a full docstring."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from interpkit import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if callable(obj) and hasattr(obj, "interpkit_spec"))
CORE_MODULES = sorted(p.stem for p in (ROOT / "interpkit").glob("*.py") if not p.stem.startswith("_"))


def test_hooks_found():
    assert HOOKS == ["register_backends", "register_methods", "register_models"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_with_signature(hook):
    docs = (ROOT / "docs" / "plugin_hooks.md").read_text()
    signature = f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"
    assert re.search(rf"^## {re.escape(signature)}$", docs, re.MULTILINE), f"docs/plugin_hooks.md lacks '## {signature}'"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert f"def test_hook_{hook}(" in sources


PLUGIN_MODULES = sorted(
    (p.parent.name if p.stem == "__init__" else f"{p.parent.name}.{p.stem}")
    for p in (ROOT / "plugins").glob("interpkit_*/*.py") if p.stem == "__init__" or not p.stem.startswith("_")
)


def _public_objects():
    modules = [f"interpkit.{m}" for m in CORE_MODULES] + PLUGIN_MODULES
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if hasattr(obj, "interpkit_impl"):  # hook implementations: the hookspec documents the contract
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("qualname,obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_docstrings(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert len(doc) >= 40, f"{qualname} needs a docstring"
    if inspect.isfunction(obj):
        source = inspect.getsource(obj)
        if re.search(r"^\s+raise \w+Error\(", source, re.MULTILINE) and "Raises" not in doc:
            pytest.fail(f"{qualname} raises but its docstring has no Raises section")


def test_every_core_module_exports():
    missing = [m for m in CORE_MODULES if not hasattr(importlib.import_module(f"interpkit.{m}"), "__all__")]
    assert missing == []
