"""Running the ``interpkit`` command in a subprocess, as a user does, and checking how it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def run_cli(args: Sequence[str | os.PathLike], *, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: str | os.PathLike | None = None, preexec_fn: Callable[[], None] | None = None,
            ) -> subprocess.CompletedProcess:
    """``python -m interpkit ARGS`` in a fresh process (``preexec_fn`` runs in it first, e.g. to set
    resource limits); text stdout/stderr captured."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("INTERPKIT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "interpkit", *map(str, args)], check=False, capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=cwd, preexec_fn=preexec_fn)


def cli_error(args: Sequence[str | os.PathLike], *messages: str, **kwargs) -> str:
    """Run the CLI and check it failed as a user error: exit status 2, no traceback, and stderr's
    last line is ``error: ...`` holding every one of ``messages``; returns that line."""
    proc = run_cli(args, **kwargs)
    err = proc.stderr
    assert "Traceback" not in err, err
    assert proc.returncode == 2, (proc.returncode, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    for message in messages:
        assert message in lines[-1], (message, lines[-1])
    return lines[-1]


def out_files(out: Path) -> dict[str, int]:
    """Every file under ``out`` with its size (to show that a failed run touched nothing)."""
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
