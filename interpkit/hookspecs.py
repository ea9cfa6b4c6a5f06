"""Hook specifications: what an interpkit plugin may implement.

A plugin is a module with ``@interpkit.hookimpl`` functions, registered under the
entry-point group ``interpkit`` in its distribution's metadata::

    [project.entry-points.interpkit]
    myplugin = "myplugin"

Bundled plugins register the same way. Each hook below returns a list of specs; the
plugin manager collects them, checks names are unique across plugins and records
which plugin provided each. The full contract, with examples, is in
docs/plugin_hooks.md.
"""

from __future__ import annotations

import pluggy

from interpkit.specs import BackendSpec, MethodSpec, ModelSpec

__all__ = ["hookspec", "register_backends", "register_methods", "register_models"]

hookspec = pluggy.HookspecMarker("interpkit")

# ---------------------------------------------------------------------------
# Registration (called once when the plugin registry is built)
# ---------------------------------------------------------------------------


@hookspec
def register_backends() -> list[BackendSpec]:
    """Return the framework backends this plugin provides.

    :return: a list of :class:`~interpkit.specs.BackendSpec`; an empty list when none.
        Backend names must be unique across all plugins.

    .. versionadded:: 0.1
    """


@hookspec
def register_methods() -> list[MethodSpec]:
    """Return the interpretation methods this plugin provides.

    :return: a list of :class:`~interpkit.specs.MethodSpec`; an empty list when none.
        Method names must be unique across all plugins.

    .. versionadded:: 0.1
    """


@hookspec
def register_models() -> list[ModelSpec]:
    """Return the named model architectures this plugin provides (``arch=NAME``).

    :return: a list of :class:`~interpkit.specs.ModelSpec`; an empty list when none.
        Architecture names must be unique across all plugins.

    .. versionadded:: 0.1
    """
