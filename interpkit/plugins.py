"""Plugin discovery and the registry of backends, methods and models.

Plugins are found through the ``interpkit`` entry-point group, the same path for
bundled and third-party plugins. A plugin that fails to import or to register is
recorded with its error and skipped; the others keep working. Two plugins that
claim one name stop start-up with an error naming both distributions.

Environment:

``INTERPKIT_DISABLE_PLUGIN_AUTOLOAD=1``
    Load no entry points (only plugins passed explicitly).
``INTERPKIT_DISABLE_PLUGINS=name1,name2``
    Skip these entry points by name (listed as "disabled").
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from interpkit import hookspecs
from interpkit.errors import PluginError
from interpkit.specs import BackendSpec, MethodSpec, ModelSpec

__all__ = ["PluginInfo", "Registry", "clear_cache", "get_plugin_manager", "get_registry", "hookimpl"]

hookimpl = pluggy.HookimplMarker("interpkit")
ENTRY_POINT_GROUP = "interpkit"

#: hook name -> (registry attribute, spec type, singular noun)
_KINDS: dict[str, tuple[str, type, str]] = {
    "register_backends": ("backends", BackendSpec, "backend"),
    "register_methods": ("methods", MethodSpec, "method"),
    "register_models": ("models", ModelSpec, "model"),
}


@dataclass
class PluginInfo:
    """One plugin as found: where it comes from, what it registered, whether it works.

    ``status`` is "ok", "error" (``error`` says why) or "disabled".
    """

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"
    error: str | None = None
    hooks: tuple[str, ...] = ()
    provides: dict[str, list[str]] = field(default_factory=dict)

    def describe(self, registry: Registry) -> dict[str, Any]:
        """JSON-ready description, as printed by ``interpkit plugins``."""
        entry: dict[str, Any] = {
            "name": self.name, "distribution": self.distribution, "version": self.version,
            "module": self.module, "status": self.status, "error": self.error, "hooks": list(self.hooks),
            "kinds": sorted(k for k, v in self.provides.items() if v),
        }
        entry["methods"] = [_describe_method(registry.methods[n]) for n in self.provides.get("methods", [])]
        entry["backends"] = [
            {"name": n, "capabilities": sorted(map(str, registry.backends[n].capabilities)),
             "available": registry.backends[n].available(),
             "suffixes": list(registry.backends[n].suffixes)}
            for n in self.provides.get("backends", [])
        ]
        entry["models"] = [
            {"name": n, "backend": registry.models[n].backend} for n in self.provides.get("models", [])
        ]
        return entry


def _describe_method(spec: MethodSpec) -> dict[str, Any]:
    params = [
        {"name": p.name, "flag": p.flag, "type": p.type.__name__, "default": p.default, "help": p.help,
         "choices": list(p.choices) if p.choices else None, "min": p.min, "max": p.max}
        for p in spec.params
    ]
    return {"name": spec.name, "requires": sorted(map(str, spec.requires)), "summary": spec.summary,
            "source": spec.source, "params": params}


@dataclass
class Registry:
    """Everything the loaded plugins registered, by name, plus each plugin's status."""

    backends: dict[str, BackendSpec] = field(default_factory=dict)
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    origin: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> Any:
        """Look up a backend, method or model by name.

        Raises
        ------
        PluginError
            If no plugin registered ``name``; close names and the full list are given.
        """
        table: dict[str, Any] = getattr(self, kind)
        if name in table:
            return table[name]
        noun = {"backends": "backend", "methods": "method", "models": "model architecture"}[kind]
        close = difflib.get_close_matches(str(name), list(table), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        known = ", ".join(sorted(table)) or "none"
        broken = [p.name for p in self.plugins if p.status == "error"]
        note = f" (plugins that failed to load: {', '.join(broken)}; see `interpkit plugins`)" if broken else ""
        raise PluginError(f"no {noun} named {name!r}.{hint} Available: {known}{note}.")

    def plugin_of(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``name``."""
        return self.origin[(kind, name)]


def _plugin_disabled_names() -> set[str]:
    raw = os.environ.get("INTERPKIT_DISABLE_PLUGINS", "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def get_plugin_manager(
    plugins: Iterable[ModuleType | object] = (), *, autoload: bool | None = None
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Build a fresh plugin manager and load plugins into it.

    Parameters
    ----------
    plugins : iterable of modules or objects
        Plugins registered directly, in addition to entry points (for tests and
        notebooks). Default is ().
    autoload : bool or None
        Load the ``interpkit`` entry points. None means yes unless
        ``INTERPKIT_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value other than "0".

    Returns
    -------
    (pluggy.PluginManager, list of PluginInfo)
        Plugins that failed to import or validate are listed with status "error" and
        are not registered.
    """
    pm = pluggy.PluginManager("interpkit")
    pm.add_hookspecs(hookspecs)
    if autoload is None:
        autoload = os.environ.get("INTERPKIT_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    infos: list[PluginInfo] = []
    disabled = _plugin_disabled_names()
    if autoload:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, ep.value, dist.name if dist else None, dist.version if dist else None)
            infos.append(info)
            if ep.name in disabled:
                info.status = "disabled"
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                info.status, info.error = "error", f'Error importing plugin "{ep.name}": {type(exc).__name__}: {exc}'
                continue
            _register(pm, module, info)
    for obj in plugins:
        name = getattr(obj, "__name__", type(obj).__name__)
        info = PluginInfo(name, name)
        infos.append(info)
        _register(pm, obj, info)
    return pm, infos


def _register(pm: pluggy.PluginManager, module: Any, info: PluginInfo) -> None:
    try:
        pm.register(module, name=info.name)
        pm.check_pending()
    except Exception as exc:  # noqa: BLE001 - pluggy raises several types for a bad plugin
        if pm.is_registered(module):
            pm.unregister(module)
        info.status, info.error = "error", f'Plugin "{info.name}" is invalid: {type(exc).__name__}: {exc}'
        return
    info.hooks = tuple(sorted(
        hook for hook in _KINDS for impl in getattr(pm.hook, hook).get_hookimpls() if impl.plugin is module
    ))


def _collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registry:
    registry = Registry(plugins=infos)
    by_name = {info.name: info for info in infos}
    for info in infos:
        if info.status != "ok":
            continue
        gathered: list[tuple[str, str, Any]] = []
        try:
            for hook, (attr, spec_type, noun) in _KINDS.items():
                for impl in getattr(pm.hook, hook).get_hookimpls():
                    if impl.plugin_name != info.name:
                        continue
                    result = impl.function()
                    if result is None:
                        continue
                    if not isinstance(result, (list, tuple)) or not all(isinstance(s, spec_type) for s in result):
                        raise PluginError(f"{hook}() must return a list of {spec_type.__name__}, got {result!r}")
                    gathered += [(attr, noun, spec) for spec in result]
        except Exception as exc:  # noqa: BLE001 - one plugin's failure must not stop the others
            info.status, info.error = "error", f'Plugin "{info.name}" failed to register: {type(exc).__name__}: {exc}'
            continue
        for attr, noun, spec in gathered:
            table = getattr(registry, attr)
            if spec.name in table:
                other = registry.origin[(attr, spec.name)]
                raise PluginError(
                    f"duplicate {noun} name {spec.name!r}: registered by plugin {other.name!r} "
                    f"(distribution {other.distribution or other.module}) and by plugin {info.name!r} "
                    f"(distribution {info.distribution or info.module}); uninstall one, or disable one with "
                    f"INTERPKIT_DISABLE_PLUGINS={other.name} or INTERPKIT_DISABLE_PLUGINS={info.name}."
                )
            table[spec.name] = spec
            registry.origin[(attr, spec.name)] = by_name[info.name]
            info.provides.setdefault(attr, []).append(spec.name)
    return registry


_CACHE: dict[tuple, Registry] = {}


def get_registry(plugins: Iterable[ModuleType | object] = (), *, autoload: bool | None = None) -> Registry:
    """The registry of everything the plugins provide.

    Parameters
    ----------
    plugins : iterable of modules or objects
        Plugins to register directly, besides entry points. Default is ().
    autoload : bool or None
        As in :func:`get_plugin_manager`. Default is None.

    Built on first use and cached per (autoload setting, disabled names, explicit
    plugins); call :func:`clear_cache` after installing a plugin in a running process.

    Raises
    ------
    PluginError
        If two plugins register the same name.
    """
    plugins = tuple(plugins)
    key = (autoload, os.environ.get("INTERPKIT_DISABLE_PLUGIN_AUTOLOAD", ""), frozenset(_plugin_disabled_names()),
           tuple(id(p) for p in plugins))
    if key not in _CACHE:
        pm, infos = get_plugin_manager(plugins, autoload=autoload)
        _CACHE[key] = _collect(pm, infos)
    return _CACHE[key]


def clear_cache() -> None:
    """Forget cached registries (e.g. after ``pip install`` of a new plugin)."""
    _CACHE.clear()
    importlib.invalidate_caches()
