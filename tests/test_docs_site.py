"""The documentation site builds with no warnings, and what it says matches the code.

mkdocs.yml runs docs/gen_reference.py as a hook, which fills the method pages' parameter tables, the
registry tables and the CLI reference from the installed code at build time, so they cannot go stale.
These tests check the rest: the strict build (broken links, anchors, unknown markers and plugins that
fail to load all stop it), a page for every bundled method, and every command line and flag the
hand-written pages show against the real click commands.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
#: Pages whose flags are not interpkit's own (release notes quote reference implementations' flags).
HISTORICAL = {"whats_new.md"}
#: Flags that stand for any option in the text ("the CLI options (`--name`, ...)").
PLACEHOLDER_FLAGS = {"--name"}
#: The plugin author guide runs the example third-party plugin, which the tests install only for a while.
EXAMPLE_PLUGIN = ROOT / "tests" / "plugin_example"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, strictly, into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out), "-f", "mkdocs.yml"]
    proc = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, f"mkdocs build printed warnings:\n{log}"
    return out


def test_site_builds_strict_without_warnings(site):
    assert (site / "index.html").is_file()
    assert (site / "plugin_hooks" / "index.html").is_file()
    assert not list(site.rglob("*.py")), "the generator script must not be published"


# -- generated content ---------------------------------------------------------------------------
def test_every_page_expands_without_leftover_markers():
    for page in PAGES:
        text = gen.expand(page.read_text(), page.relative_to(DOCS).as_posix())
        assert not gen.MARKER.search(text), f"{page}: a marker was not expanded"


@functools.lru_cache(maxsize=1)
def _example_methods() -> dict:
    """The example plugin's methods (tests/plugin_example), by name, without installing it (and without
    leaving its module imported, so tests/test_out_of_tree_plugin.py imports the installed copy)."""
    spec = importlib.util.spec_from_file_location("_docs_strand_gap",
                                                  EXAMPLE_PLUGIN / "interpkit_strand_gap" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {method.name: method for method in module.register_methods()}


def _flags(command_path: tuple[str, ...]) -> set[str]:
    """Every option string of one command, --no-x forms included; a placeholder subcommand (METHOD,
    ARCH) stands for any subcommand of its group. Empty for a command that does not exist."""
    import click

    from interpkit.cli import _method_command, cli

    with gen._not_a_terminal():
        ctx = click.Context(cli, info_name="interpkit", **cli.context_settings)
        commands = [cli]
        for name in command_path[1:]:
            group, commands = commands[0], []
            if name.isupper():
                names = group.list_commands(ctx)
            else:
                names = [name]
            for sub in names:
                command = group.get_command(ctx, sub)
                if command is None and command_path[1] == "run" and sub in _example_methods():
                    command = _method_command(_example_methods()[sub])
                if command is not None:
                    commands.append(command)
            if not commands:
                return set()
            ctx = click.Context(commands[0], info_name=name, parent=ctx, **commands[0].context_settings)
        return {o for command in commands for p in command.get_params(ctx) if isinstance(p, click.Option)
                for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("method", gen.methods())
def test_every_bundled_method_has_a_page_with_generated_parameters(method, site):
    page = DOCS / "methods" / f"{method}.md"
    assert page.is_file(), f"method {method!r} has no page; add docs/methods/{method}.md (like ism.md)"
    text = page.read_text()
    for marker in (f"<!-- interpkit:spec {method} -->", f"<!-- interpkit:params {method} -->"):
        assert marker in text, f"{page} lacks the line {marker}"
    assert f"methods/{method}.md" in (ROOT / "mkdocs.yml").read_text(), f"add methods/{method}.md to the nav"
    built = (site / "methods" / method / "index.html").read_text()
    for param in gen._method(method).params:
        assert f"<code>{param.flag}" in built, f"the built page of {method} lacks {param.flag}"


@pytest.mark.parametrize("page", sorted((DOCS / "methods").glob("*.md")), ids=lambda p: p.stem)
def test_method_pages_name_registered_methods(page):
    names = re.findall(r"<!-- interpkit:(?:spec|params) (\S+) -->", page.read_text())
    assert page.stem == "index" or names, f"{page} has no interpkit:spec/params markers"
    unknown = sorted(set(names) - set(gen.methods()))
    assert not unknown, f"{page} documents {unknown}, which no bundled plugin registers"


def test_cli_reference_lists_every_command(site):
    built = (site / "reference" / "cli" / "index.html").read_text()
    paths = gen.commands()
    assert ("interpkit", "run", "ism") in paths and ("interpkit", "train", "explainn") in paths
    for path in paths:
        anchor = re.sub(r"[^a-z0-9_-]", "", "-".join(path).lower())
        assert f'id="{anchor}"' in built, f"the CLI reference lacks `{' '.join(path)}`"
    for flag in _flags(("interpkit", "run", "gia")):
        assert re.search(rf"<code>[^<]*(?<![\w-]){re.escape(flag)}(?![\w-])", built), f"the CLI reference lacks {flag}"


# -- hand-written text against the code ----------------------------------------------------------
def _command_lines(text: str) -> list[str]:
    """`interpkit ...` command lines of the page's bash code blocks (continuations joined)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("interpkit "):
                    lines.append(part)
    return lines


def _resolve(argv: list[str]) -> tuple[str, ...]:
    path = ["interpkit"]
    if argv and argv[0] in ("run", "train") and len(argv) > 1:
        path += argv[:2]
    elif argv and not argv[0].startswith("-"):
        path.append(argv[0])
    return tuple(path)


COMMAND_LINES = [(page.relative_to(DOCS).as_posix(), line)
                 for page in PAGES for line in _command_lines(page.read_text())]


@pytest.mark.parametrize("page,line", COMMAND_LINES,
                         ids=[f"{p}:{i}" for i, (p, _) in enumerate(COMMAND_LINES)])
def test_documented_command_lines_use_real_flags(page, line):
    argv = shlex.split(line, comments=True)[1:]
    path = _resolve(argv)
    known = _flags(path)
    assert known, f"{page}: `{line}` names a command that does not exist ({' '.join(path)})"
    used = {a.split("=")[0] for a in argv if a.startswith("-") and not re.fullmatch(r"-\d.*", a)}
    unknown = sorted(used - known - {"--version"})
    assert not unknown, f"{page}: `{line}` uses {unknown}, which are not options of {' '.join(path)}"


def _prose_flags(text: str) -> set[str]:
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    prose = re.sub(r"<!--.*?-->", "", prose, flags=re.DOTALL)
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", prose))


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in HISTORICAL],
                         ids=lambda p: p.relative_to(DOCS).as_posix())
def test_flags_in_prose_exist(page):
    """A flag a page mentions is an option of some command; on a method page, of that method's command."""
    flags = _prose_flags(page.read_text())
    if page.parent.name == "methods" and page.stem != "index":
        known = _flags(("interpkit", "run", page.stem))
        where = f"interpkit run {page.stem}"
    else:
        known = set().union(*(_flags(path) for path in gen.commands()))
        where = "any interpkit command"
    unknown = sorted(flags - known - {"--version"} - PLACEHOLDER_FLAGS)
    assert not unknown, f"{page.relative_to(DOCS)} mentions {unknown}, which are not options of {where}"
