"""Plugin discovery, isolation of broken plugins, duplicate names, and every hook."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _dists import make_dist

from interpkit import (
    BackendSpec,
    Capability,
    MethodSpec,
    ModelSpec,
    PluginError,
    Result,
    get_registry,
    hookimpl,
)
from interpkit.plugins import clear_cache, get_plugin_manager

GOOD_METHOD = """
from interpkit import MethodSpec, Result, hookimpl

def count_bases(model, X):
    return Result("count-bases", arrays={"counts": X.sum(axis=2)})

@hookimpl
def register_methods():
    return [MethodSpec("count-bases", count_bases, "Base counts per sequence.")]
"""


@pytest.fixture
def syspath(tmp_path, monkeypatch):
    """A directory on sys.path for throwaway distributions; caches cleared before and after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    clear_cache()
    yield tmp_path
    clear_cache()
    for mod in [m for m in sys.modules if m.startswith("ipk_test_")]:
        del sys.modules[mod]


def test_bundled_plugins_are_entry_points():
    registry = get_registry()
    by_name = {p.name: p for p in registry.plugins}
    assert by_name["numpy"].status == "ok" and by_name["numpy"].distribution == "interpkit"
    assert by_name["predict"].hooks == ("register_methods",)
    assert "predict" in registry.methods and "numpy" in registry.backends and "pwm-scan" in registry.models
    assert registry.plugin_of("methods", "predict").name == "predict"


def test_third_party_entry_point_is_discovered(syspath):
    make_dist(syspath, "ipk-test-good", "1.2.3", {"goodplug": "ipk_test_good"}, {"ipk_test_good": GOOD_METHOD})
    registry = get_registry()
    info = {p.name: p for p in registry.plugins}["goodplug"]
    assert (info.status, info.distribution, info.version) == ("ok", "ipk-test-good", "1.2.3")
    assert registry.plugin_of("methods", "count-bases") is info


def test_broken_plugin_is_reported_and_others_work(syspath):
    make_dist(syspath, "ipk-test-broken", "0.1", {"brokenplug": "ipk_test_broken"},
              {"ipk_test_broken": "raise ImportError('needs libfoo')\n"})
    registry = get_registry()
    info = {p.name: p for p in registry.plugins}
    assert info["brokenplug"].status == "error"
    assert 'Error importing plugin "brokenplug": ImportError: needs libfoo' == info["brokenplug"].error
    assert info["predict"].status == "ok" and "predict" in registry.methods
    with pytest.raises(PluginError, match="failed to load: brokenplug"):
        registry.get("methods", "nope")


def test_breaking_a_bundled_plugin_via_cli(tmp_path):
    # Shadow the bundled predict plugin's module with one that fails to import.
    (tmp_path / "interpkit_predict").mkdir()
    (tmp_path / "interpkit_predict" / "__init__.py").write_text("raise RuntimeError('broken on purpose')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "interpkit.cli", "plugins"], capture_output=True, text=True,
                         env=env, check=True)
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["predict"]["status"] == "error"
    assert "RuntimeError: broken on purpose" in plugins["predict"]["error"]
    assert plugins["numpy"]["status"] == "ok" and plugins["numpy"]["backends"][0]["name"] == "numpy"


def test_plugin_returning_wrong_type_is_isolated(syspath):
    source = "from interpkit import hookimpl\n@hookimpl\ndef register_methods():\n    return ['not a spec']\n"
    make_dist(syspath, "ipk-test-bad", "0.1", {"badplug": "ipk_test_bad"}, {"ipk_test_bad": source})
    registry = get_registry()
    info = {p.name: p for p in registry.plugins}["badplug"]
    assert info.status == "error" and "must return a list of MethodSpec" in info.error
    assert "predict" in registry.methods


def test_hookimpl_matching_no_spec_is_reported(syspath):
    source = "from interpkit import hookimpl\n@hookimpl\ndef register_method():\n    return []\n"
    make_dist(syspath, "ipk-test-typo", "0.1", {"typoplug": "ipk_test_typo"}, {"ipk_test_typo": source})
    info = {p.name: p for p in get_registry().plugins}["typoplug"]
    assert info.status == "error" and "register_method" in info.error


def test_duplicate_names_fail_naming_both_distributions(syspath):
    dup = GOOD_METHOD.replace("count-bases", "predict")
    make_dist(syspath, "ipk-test-dup", "0.1", {"dupplug": "ipk_test_dup"}, {"ipk_test_dup": dup})
    with pytest.raises(PluginError, match="duplicate method name 'predict'") as err:
        get_registry()
    for part in ("plugin 'predict' (distribution interpkit)", "plugin 'dupplug' (distribution ipk-test-dup)",
                 "INTERPKIT_DISABLE_PLUGINS=dupplug"):
        assert part in str(err.value)


def test_disable_by_name_and_autoload_off(syspath, monkeypatch):
    monkeypatch.setenv("INTERPKIT_DISABLE_PLUGINS", "predict")
    registry = get_registry()
    assert {p.name: p.status for p in registry.plugins}["predict"] == "disabled"
    assert "predict" not in registry.methods and "numpy" in registry.backends
    monkeypatch.setenv("INTERPKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert get_registry().plugins == []
    pm, infos = get_plugin_manager()
    assert infos == [] and pm.get_plugins() == set()


# -- one test per hook (a meta-test in test_docs.py enforces this) --------------------------
class _Plugin:
    @hookimpl
    def register_backends(self):
        return [BackendSpec("fake", lambda source, **kw: source, "Fake backend.", suffixes=(".fake",))]

    @hookimpl
    def register_methods(self):
        def total(model, X):
            return Result("total", arrays={"total": model.predict(X).sum(axis=1)})
        return [MethodSpec("total", total, "Sum of outputs.", requires={"predict"})]

    @hookimpl
    def register_models(self):
        return [ModelSpec("fake-arch", "numpy", lambda source, **kw: source, "Fake architecture.")]


def test_hook_register_backends():
    registry = get_registry([_Plugin()], autoload=False)
    spec = registry.get("backends", "fake")
    assert spec.claims_source("model.FAKE") and not spec.claims_source("model.pth")
    assert spec.capabilities == frozenset({Capability.PREDICT}) and spec.available()


def test_hook_register_methods():
    registry = get_registry([_Plugin()], autoload=False)
    assert registry.get("methods", "total").requires == frozenset({Capability.PREDICT})
    assert registry.plugin_of("methods", "total").hooks == ("register_backends", "register_methods",
                                                            "register_models")


def test_hook_register_models():
    registry = get_registry([_Plugin()], autoload=False)
    assert registry.get("models", "fake-arch").backend == "numpy"
    with pytest.raises(PluginError, match="Did you mean 'fake-arch'"):
        registry.get("models", "fake_arch")


def test_string_references_resolve_lazily():
    spec = MethodSpec("x", "numpy:array", "lazy")
    assert spec.resolve() is np.array
    with pytest.raises(PluginError, match="cannot import 'numpy:no_such_thing'"):
        MethodSpec("y", "numpy:no_such_thing", "bad").resolve()
