"""Running the ``interpkit`` command in a subprocess, as a user does, and checking how it fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def kill_after(args: Sequence[str | os.PathLike], marker: Path, *, delay: float, env: dict[str, str] | None = None,
               timeout: float = 120) -> None:
    """Start ``python -m interpkit ARGS``, wait for ``marker`` to appear, then SIGKILL it ``delay`` s later.

    The process must still be running then (the caller chooses a marker and delay that leave work),
    so that the kill lands at a moment of real work.
    """
    full_env = {**os.environ, **(env or {})}
    full_env.pop("INTERPKIT_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "interpkit", *map(str, args)], env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"{marker} never appeared"
            time.sleep(0.005)
        time.sleep(delay)
        assert proc.poll() is None, f"the run finished within {delay:.3f} s of {marker.name}; give it more work"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def assert_complete_or_partial(out: Path) -> list[str]:
    """Every file under ``out`` reads back whole as what its suffix says, or is a hidden ``.NAME.XXXX.part``
    temporary that no reader opens (what a killed atomic write leaves); returns the latter's names."""
    import numpy as np

    partial = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.name
        if name.startswith(".") and name.endswith(".part"):
            partial.append(name)
        elif name.endswith((".pth", ".pt")):
            import torch

            torch.load(path, weights_only=True)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".npz"):
            with np.load(path) as archive:
                [archive[k] for k in archive.files]
        else:
            assert path.read_text().endswith("\n"), name  # TSV, the checkpoints marker
    return partial
