"""Generated parts of the documentation site, filled in from the code at build time.

``mkdocs.yml`` names this file under ``hooks:``, so mkdocs (no plugin needed) calls
:func:`on_page_markdown` on every page, which replaces marker comments by text generated
from the installed interpkit: the plugin registry (``MethodSpec``, ``Param``,
``BackendSpec``, ``ModelSpec``) and the click commands. Nothing generated is committed, so
it cannot go stale: a new option, method or command appears on the next build. On GitHub the
markers are invisible HTML comments.

Markers (one per line, nothing else on the line):

``<!-- interpkit:spec METHOD -->``
    What the registry says about a method: summary, source, capabilities, sequences,
    its place in ``interpkit explain`` and the command that runs it.
``<!-- interpkit:params METHOD -->``
    The method's parameters (``MethodSpec.params``): option, Python name, type, default, help.
``<!-- interpkit:train-params ARCH -->``
    An architecture's training options (``ModelSpec.train_params``).
``<!-- interpkit:methods -->`` / ``<!-- interpkit:backends -->`` / ``<!-- interpkit:models -->``
    Tables of the registered methods, backends and architectures.
``<!-- interpkit:explain-plan -->``
    The methods in ``interpkit explain`` order, with the first paragraph of each one's explain hook.
``<!-- interpkit:cli -->``
    The CLI reference: every command and subcommand of ``interpkit.cli.cli``, including the
    dynamic ``run METHOD`` and ``train ARCH`` groups, with usage, help and options.
``<!-- interpkit:include PATH -->``
    A repository file (path relative to the repository root) as a fenced code block.
``<!-- interpkit:output ARGS... -->``
    The output of ``interpkit ARGS...`` run in-process from the repository root (keep it cheap).

Only plugins of the ``interpkit`` distribution itself are documented, so a third-party plugin
installed in the build environment does not change the site. An unknown marker, or one naming an
unknown architecture or a missing file, stops the build. A method page whose method is not
registered (yet) gets a visible note instead, and tests/test_docs_site.py decides whether that is
allowed.

Run ``python docs/gen_reference.py docs/reference/cli.md`` to print a page with its markers
expanded (no mkdocs needed).
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import logging
import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The distribution whose plugins the site documents.
DISTRIBUTION = "interpkit"
MARKER = re.compile(r"^<!--\s*interpkit:([\w-]+)(?:[ \t]+(.*?))?\s*-->[ \t]*$", re.MULTILINE)

log = logging.getLogger("mkdocs.hooks.interpkit_docs")

_CAPABILITIES = {
    "predict": "predictions",
    "gradient": "input gradients",
    "layers": "the layer table and activations",
    "neuron": "single neurons as functions of their window",
    "pool_inputs": "the feature maps entering each max-pool",
    "torch_function": "a PyTorch form of the model",
}


class DocsError(Exception):
    """A marker that cannot be expanded; stops the build."""


# -- text helpers ---------------------------------------------------------------------------------
def _inline_html(text: str) -> str:
    """Escape plain text for HTML, turning `code` and ``code`` spans into <code>."""
    parts = re.split(r"``?([^`]+?)``?", text)
    return "".join(html.escape(p) if i % 2 == 0 else f"<code>{html.escape(p)}</code>"
                   for i, p in enumerate(parts))


def _inline_md(text: str) -> str:
    """Escape plain text for Markdown, keeping `code` spans (``code`` becomes `code`)."""
    parts = re.split(r"``?([^`]+?)``?", text)
    out = []
    for i, p in enumerate(parts):
        if i % 2:
            out.append(f"`{p}`")
        else:
            p = html.escape(p, quote=False)
            out.append(re.sub(r"([\\*_\[\]])", r"\\\1", p))
    return "".join(out)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<table class="docutils generated">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>{body}</tbody>\n</table>")


def _code(value: Any) -> str:
    return f"<code>{html.escape(str(value))}</code>"


# -- the registry ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _registry() -> Any:
    from interpkit.plugins import get_registry

    registry = get_registry()
    broken = [f"{p.name}: {p.error}" for p in registry.plugins if p.status == "error" and
              (p.distribution in (None, DISTRIBUTION))]
    if broken:
        raise DocsError("bundled plugins failed to load, so their pages would be wrong: " + "; ".join(broken))
    return registry


def _bundled(kind: str, name: str) -> bool:
    return _registry().plugin_of(kind, name).distribution == DISTRIBUTION


def methods() -> list[str]:
    """Names of the registered methods of the ``interpkit`` distribution, sorted."""
    return sorted(n for n in _registry().methods if _bundled("methods", n))


def models() -> list[str]:
    """Names of the registered architectures of the ``interpkit`` distribution, sorted."""
    return sorted(n for n in _registry().models if _bundled("models", n))


def backends() -> list[str]:
    """Names of the registered backends of the ``interpkit`` distribution, sorted."""
    return sorted(n for n in _registry().backends if _bundled("backends", n))


def _default(param: Any) -> str:
    if param.default is None:
        return "unset"
    if param.type is bool:
        return _code(str(param.default))
    return _code(repr(param.default) if param.type is str else param.default)


def _details(param: Any) -> str:
    bits = [_inline_html(param.help)]
    if param.choices:
        bits.append("One of " + ", ".join(_code(c) for c in param.choices) + ".")
    bounds = []
    if param.min is not None:
        bounds.append(f"&ge; {_code(_number(param.min))}")
    if param.max is not None:
        bounds.append(f"&le; {_code(_number(param.max))}")
    if bounds:
        bits.append("Range: " + ", ".join(bounds) + ".")
    return " ".join(bits)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def params_table(params: Any) -> str:
    """HTML table of declared :class:`~interpkit.params.Param` values."""
    if not params:
        return "<p>No options.</p>"
    rows = []
    for p in params:
        flag = f"{p.flag} / --no-{p.flag[2:]}" if p.type is bool else p.flag
        also = [t.__name__ for t in p.accepts if not (t.__module__ == "numpy" and t.__name__ == "integer")]
        note = f"<br><small>Python also: {html.escape(', '.join(also))}</small>" if also else ""
        kinds = p.type.__name__ + note
        rows.append([_code(flag), _code(p.name), kinds, _default(p), _details(p)])
    return _table(["Option", "Python", "Type", "Default", "Description"], rows)


def _method(name: str) -> Any:
    return _registry().methods.get(name)


def _not_registered(name: str) -> str:
    log.info("interpkit docs: method %r is not registered; its page shows a note", name)
    return (f'!!! note "Not registered in this installation"\n    No installed plugin registers the method '
            f"`{name}`, so its parameters and registry facts cannot be shown here.\n")


def spec_block(name: str, page: str) -> str:
    """Markdown list of what the registry says about method ``name``."""
    spec = _method(name)
    if spec is None:
        return _not_registered(name)
    plugin = _registry().plugin_of("methods", name)
    needs = ", ".join(f"`{c}` ({_CAPABILITIES.get(str(c), str(c))})" for c in sorted(map(str, spec.requires)))
    lines = [
        f"- **Summary:** {_inline_md(spec.summary)}",
        f"- **Source:** {_inline_md(spec.source) if spec.source else 'not given'}",
        f"- **The model must provide:** {needs}",
        "- **Sequences:** " + ("needed (`--sequences` FASTA or `.npy`; `X` in Python)" if spec.needs_sequences
                               else "none: the method makes its own (leave out `--sequences`)"),
    ]
    if spec.checkpoint_param:
        lines.append(f"- **Resumable:** finished pieces are kept in `{spec.checkpoint_param}` "
                     "(`OUT/checkpoints` on the command line); rerunning the same command resumes.")
    hook = spec.explain
    if hook is None:
        how = "runs with its defaults whenever the model provides the capabilities above."
    else:
        doc = _hook_doc(hook)
        how = _inline_md(doc) if doc else "its plugin decides per model"
    lines.append(f"- **In `interpkit explain`** (place {spec.explain_order}): {how}")
    cli_anchor = f"interpkit-run-{re.sub(r'[^a-z0-9_-]', '', name.lower())}"
    cli_page = _relative(page, "reference/cli.md")
    lines.append(f"- **Command line:** [`interpkit run {name}`]({cli_page}#{cli_anchor})"
                 f" MODEL{' --sequences FILE' if spec.needs_sequences else ''} --out DIR [options]")
    lines.append(f"- **Python:** `interpkit.run(\"{name}\", model{', X' if spec.needs_sequences else ''}, "
                 "**options)` with the Python names below")
    lines.append(f"- **Plugin:** `{plugin.module}` ({plugin.distribution} {plugin.version})")
    return "\n".join(lines) + "\n"


def _hook_doc(hook: Any) -> str:
    try:
        from interpkit.specs import resolve_callable

        func = resolve_callable(hook, "explain hook")
    except Exception:  # noqa: BLE001 - a docs build must not fail on a plugin's import problem here
        return ""
    doc = (func.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def _relative(page: str, target: str) -> str:
    return os.path.relpath(target, os.path.dirname(page) or ".").replace(os.sep, "/")


def methods_table(page: str) -> str:
    rows = []
    for name in methods():
        spec = _method(name)
        own = f"methods/{name}.md"
        label = f"[`{name}`]({_relative(page, own)})" if (DOCS / own).is_file() else f"`{name}`"
        caps = ", ".join(f"`{c}`" for c in sorted(map(str, spec.requires)))
        seqs = "yes" if spec.needs_sequences else "no"
        rows.append(f"| {label} | {caps} | {seqs} | {_inline_md(spec.summary).replace('|', '&#124;')} |")
    return "| Method | Needs | Sequences | What it computes |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def explain_plan(page: str) -> str:
    """The methods in ``interpkit explain`` order, with what each one's explain hook says."""
    rows = []
    for name in sorted(methods(), key=lambda n: (_method(n).explain_order, n)):
        spec = _method(name)
        own = f"methods/{name}.md"
        label = f"[`{name}`]({_relative(page, own)})" if (DOCS / own).is_file() else f"`{name}`"
        caps = ", ".join(f"`{c}`" for c in sorted(map(str, spec.requires)))
        doc = _hook_doc(spec.explain) if spec.explain is not None else ""
        when = _inline_md(doc) if doc else "Runs with its defaults when the model provides what it needs."
        rows.append(f"| {spec.explain_order} | {label} | {caps} | {when.replace('|', '&#124;')} |")
    return "| Order | Method | Needs | In `interpkit explain` |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def backends_table() -> str:
    rows = []
    for name in backends():
        b = _registry().backends[name]
        suffixes = ", ".join(_code(s) for s in b.suffixes) or "objects only"
        extra = _code(f"pip install 'interpkit[{b.extra}]'") if b.extra else "included"
        caps = ", ".join(_code(c) for c in sorted(map(str, b.capabilities)))
        rows.append([_code(name), suffixes, _inline_html(b.summary), caps, extra])
    return _table(["Backend", "Files", "What it loads", "Capabilities (at most)", "Install"], rows)


def models_table() -> str:
    rows = []
    for name in models():
        m = _registry().models[name]
        trainable = f"yes ({_code(f'interpkit train {name}')})" if m.train is not None else "no"
        rows.append([_code(name), _code(m.backend), _inline_html(m.summary), _inline_html(m.source or ""),
                     trainable])
    return _table(["--arch", "Backend", "Architecture", "Source", "Trainable here"], rows)


def train_params(name: str) -> str:
    spec = _registry().models.get(name)
    if spec is None:
        raise DocsError(f"no architecture named {name!r} is registered; known: {', '.join(models())}")
    return params_table(spec.train_params)


# -- the CLI --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _not_a_terminal() -> Iterator[None]:
    """Commands built here see no terminal, so defaults that follow ``isatty`` (verbose) are stable."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _wanted(path: tuple[str, ...]) -> bool:
    """Leave out subcommands that come from other distributions' plugins."""
    if len(path) == 3 and path[1] == "run":
        return path[2] in _registry().methods and _bundled("methods", path[2])
    if len(path) == 3 and path[1] == "train":
        return path[2] in _registry().models and _bundled("models", path[2])
    return True


def _walk(command: Any, ctx: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, Any, tuple[str, ...]]]:
    import click

    yield command, ctx, path
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden or not _wanted((*path, name)):
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            yield from _walk(sub, sub_ctx, (*path, name))


def commands() -> list[tuple[str, ...]]:
    """Every documented command path, e.g. ("interpkit", "run", "ism")."""
    import click

    from interpkit.cli import cli

    with _not_a_terminal():
        root = click.Context(cli, info_name="interpkit", **cli.context_settings)
        return [path for _, _, path in _walk(cli, root, ("interpkit",))]


def cli_reference() -> str:
    """Markdown for every command: heading, help, usage, options, subcommands."""
    import click

    from interpkit.cli import cli

    out = []
    with _not_a_terminal():
        root = click.Context(cli, info_name="interpkit", **cli.context_settings)
        for command, ctx, path in _walk(cli, root, ("interpkit",)):
            level = "#" * min(2 + max(len(path) - 2, 0), 4)
            out.append(f"{level} `{' '.join(path)}`\n")
            for paragraph in (command.help or "").strip().split("\n\n"):
                text = " ".join(line.strip() for line in paragraph.splitlines() if line.strip() != "\b")
                if text:
                    out.append(f"<p>{_inline_html(text)}</p>\n")
            usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
            out.append(f"```text\n{usage}\n```\n")
            records = [r for r in (p.get_help_record(ctx) for p in command.get_params(ctx)
                                   if isinstance(p, click.Option)) if r]
            if records:
                out.append(_table(["Option", "Description"],
                                  [[_code(opts), _inline_html(text)] for opts, text in records]) + "\n")
            if isinstance(command, click.Group):
                rows = []
                for name in command.list_commands(ctx):
                    sub = command.get_command(ctx, name)
                    if sub is None or sub.hidden or not _wanted((*path, name)):
                        continue
                    anchor = "-".join([*path, name]).lower()
                    rows.append(f"| [`{name}`](#{re.sub(r'[^a-z0-9_-]', '', anchor)}) | "
                                f"{_inline_md(sub.get_short_help_str(limit=300)).replace('|', '&#124;')} |")
                out.append("| Command | What it does |\n|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(out)


# -- files and command output ---------------------------------------------------------------------
_LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".yml": "yaml", ".yaml": "yaml",
              ".json": "json", ".sh": "bash"}


def include(path: str) -> str:
    file = (ROOT / path).resolve()
    if ROOT not in file.parents or not file.is_file():
        raise DocsError(f"include {path!r}: no such file in the repository")
    text = file.read_text().rstrip("\n")
    fence = "````" if "```" in text else "```"
    return f"{fence}{_LANGUAGES.get(file.suffix, 'text')}\n{text}\n{fence}\n"


@contextlib.contextmanager
def _in_root() -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(previous)


def command_output(args: str) -> str:
    from click.testing import CliRunner

    from interpkit.cli import cli

    argv = shlex.split(args)
    with _in_root(), _not_a_terminal():
        result = CliRunner().invoke(cli, argv, prog_name="interpkit", catch_exceptions=True)
    if result.exit_code != 0:
        raise DocsError(f"`interpkit {args}` exited with {result.exit_code}: {result.output.strip()[-500:]}"
                        f"{result.exception!r}")
    return f"```text\n$ interpkit {args}\n{result.output.rstrip()}\n```\n"


# -- expansion ------------------------------------------------------------------------------------
def expand(markdown: str, page: str) -> str:
    """Replace every marker of ``markdown`` (the page at ``page``, relative to docs/) by generated text.

    Raises
    ------
    DocsError
        For an unknown marker, a missing argument, an unknown architecture or file.
    """

    def one(match: re.Match) -> str:
        kind, arg = match.group(1), (match.group(2) or "").strip()
        simple = {"methods": lambda: methods_table(page), "explain-plan": lambda: explain_plan(page),
                  "backends": backends_table, "models": models_table,
                  "cli": cli_reference}
        with_arg = {"spec": lambda a: spec_block(a, page),
                    "params": lambda a: params_table(_method(a).params) if _method(a) else _not_registered(a),
                    "train-params": train_params, "include": include, "output": command_output}
        if kind in simple:
            return simple[kind]()
        if kind in with_arg:
            if not arg:
                raise DocsError(f"{page}: marker interpkit:{kind} needs an argument")
            return with_arg[kind](arg)
        raise DocsError(f"{page}: unknown marker interpkit:{kind}; known: "
                        f"{', '.join(sorted([*simple, *with_arg]))}")

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: expand this page's markers."""
    try:
        return expand(markdown, page.file.src_uri)
    except DocsError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"docs/gen_reference.py: {exc}") from exc


def main(argv: list[str]) -> int:
    """Print each page given (paths under docs/ or absolute) with its markers expanded."""
    for arg in argv:
        path = Path(arg).resolve()
        sys.stdout.write(expand(path.read_text(), path.relative_to(DOCS).as_posix()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
