"""The ``interpkit`` command line: thin wrappers around the library verbs.

``interpkit run METHOD MODEL --sequences FILE --out DIR [options]`` builds its options
from the method's declared :class:`~interpkit.params.Param` list, so a third-party
method gets a CLI with no extra code; ``interpkit train ARCH ...`` does the same from an
architecture's training options. User errors print one line and exit with 2.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from interpkit import __version__
from interpkit.errors import InterpkitError

__all__ = ["cli", "main"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 110}


#: Options for loading a model, shared by every command that takes MODEL; passed to the loader when given.
_MODEL_OPTIONS = (
    ("--backend", "Backend to load the model with (default: chosen from the file)."),
    ("--arch", "Named architecture for weights-only checkpoints (e.g. basset, explainn)."),
    ("--layout", "Layout of the model's input: NCL, NLC, NC1L or NCL1 (default: inferred)."),
    ("--alphabet", "Channel order of the model's input, e.g. AGCT (default: ACGT)."),
    ("--length", "Input length in bp, for checkpoints whose length cannot be inferred (default: inferred)."),
    ("--output", ("Per-position outputs to (N, T): [NCP:|NPC:]REDUCE[:START:END][@C1,C2], e.g. "
                  "'max:4000:6000@1,2'; the prefix gives the raw output's axis order when the backend's "
                  "convention (PyTorch NCP, Keras NPC) does not hold.")),
    ("--labels", "Text file with one output name per line."),
    ("--weights", "Weights file for a JSON architecture (Keras), if not beside it."),
    ("--sequence-input", "Name of the sequence input of a model with several inputs."),
)


def _model_params() -> list[click.Parameter]:
    params: list[click.Parameter] = [click.Option([flag], default=None, help=text, type=int if flag == "--length" else None)
                                     for flag, text in _MODEL_OPTIONS]
    params.append(click.Option(["--extra-input", "extra_inputs"], multiple=True, metavar="NAME=FILE.npy",
                               help="Value of a fixed extra input (e.g. Xpresso's half-life features), "
                                    "broadcast to every sequence; repeatable."))
    params.append(click.Option(["--trust"], is_flag=True, default=False,
                               help="Allow code inside the checkpoint to run (pickled modules, Keras Lambda layers). "
                                    "Only for files you trust."))
    return params


def _model_options(func: Any) -> Any:
    for param in reversed(_model_params()):
        func = click.option(*param.opts, param.name, default=param.default, help=param.help, is_flag=param.is_flag,
                            multiple=param.multiple, metavar=param.metavar,
                            type=None if param.is_flag else param.type)(func)
    return func


def _extra_inputs(pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=FILE.npy`` pairs -> {name: array}."""
    import numpy as np

    from interpkit.errors import InputError, MissingFileError

    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name:
            raise InputError(f"--extra-input {pair!r} must be NAME=FILE.npy.")
        if not os.path.isfile(path):
            raise MissingFileError(f"--extra-input {name}: file {path} does not exist.")
        out[name] = np.load(path, allow_pickle=False)
    return out


def _load(model: str, backend: str | None, arch: str | None, **options: Any) -> Any:
    from interpkit.api import load

    # --output stays text: each backend parses it with its own axis convention ((N, C, P) or (N, P, C)).
    options = {k: v for k, v in options.items() if v not in (None, False, ())}
    if "extra_inputs" in options:
        options["extra_inputs"] = _extra_inputs(options["extra_inputs"])
    return load(model, backend=backend, arch=arch, **options)


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="interpkit")
def cli() -> None:
    """Explain what trained genomics sequence models have learned."""


@cli.command("plugins", context_settings=_CONTEXT)
def plugins_command() -> None:
    """List plugins as JSON: name, distribution, version, status, hooks and what each provides."""
    from interpkit.plugins import get_registry

    registry = get_registry()
    click.echo(json.dumps([p.describe(registry) for p in registry.plugins], indent=2))


def _format_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "(none)"
    columns = list(records[0])
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@cli.command("info", context_settings=_CONTEXT)
@click.argument("model")
@_model_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_command(model: str, as_json: bool, **load_options: Any) -> None:
    """Show a model's input spec, outputs, capabilities and layer table with receptive fields (bp)."""
    from interpkit.api import describe_model

    info = describe_model(_load(model, **load_options))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"model: {info['name']}\nbackend: {info['backend']}")
    click.echo("input: " + ", ".join(f"{k}={v}" for k, v in info["input"].items()))
    click.echo(f"outputs ({len(info['outputs'])}): " + ", ".join(info["outputs"]))
    click.echo("capabilities: " + ", ".join(info["capabilities"]))
    if "output_reduction" in info:
        click.echo(f"output reduction: {info['output_reduction']}")
    for key, value in info["checkpoint"].items():
        click.echo(f"checkpoint {key}: {value}")
    click.echo("layers:\n" + _format_table(info["layers"]))


class _MethodGroup(click.Group):
    """``interpkit run``: one subcommand per registered method, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from interpkit.plugins import get_registry

        return sorted(get_registry().methods)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from interpkit.plugins import get_registry

        spec = get_registry().methods.get(name)
        return None if spec is None else _method_command(spec)


def _method_command(spec: Any) -> click.Command:
    model_keys = [p.name for p in _model_params()]
    resumable = spec.per_sequence or spec.checkpoint_param is not None

    def callback(model: str, sequences: str, out: str, force: bool, resume: bool = False,
                 chunk_size: int | None = None, **options: Any) -> None:
        from interpkit._io import check_out_dir, prepare_out_dir
        from interpkit.api import run
        from interpkit.chunks import (
            CHECKPOINTS,
            checkpoint_dir,
            remove_checkpoint_dir,
            run_chunked,
        )

        load_options = {k: options.pop(k) for k in model_keys}
        options = {k: v for k, v in options.items() if v is not None}
        if spec.per_sequence:  # in chunks on disk: resumable, memory independent of the number of sequences
            if resume and (Path(out) / CHECKPOINTS).is_dir():
                kept = len(list((Path(out) / CHECKPOINTS).glob("chunk_*.npz")))
                click.echo(f"resuming: {kept} finished chunk(s) kept", err=True)
            files = run_chunked(spec.name, _load(model, **load_options), sequences, out, chunk_size=chunk_size,
                                resume=resume, force=force, **options)
        else:
            work = None
            if spec.checkpoint_param and spec.checkpoint_param not in options:  # OUT/checkpoints, for --resume
                work = checkpoint_dir(out, resume=resume, force=force)  # the method makes it (marked)
                options[spec.checkpoint_param] = str(work)
            else:
                check_out_dir(out, force=force)  # fail before the work; create only after it
            result = run(spec.name, _load(model, **load_options), sequences, **options)
            out_dir = prepare_out_dir(out, force=force or resume, resumable=CHECKPOINTS)
            files = result.write(out_dir, overwrite=force or resume)
            if work is not None and work.is_dir():  # finished: nothing left to resume
                remove_checkpoint_dir(work)
            for warning in result.warnings:
                click.echo(f"warning: {warning}", err=True)
        for path in files:
            click.echo(str(path))

    params: list[click.Parameter] = [
        click.Argument(["model"]),
        click.Option(["--sequences", "-s"], required=spec.needs_sequences,
                     help="FASTA file (or .npy one-hot array) of sequences." if spec.needs_sequences else
                     "Not used: this method makes its own sequences."),
        click.Option(["--out", "-o"], required=True, help="Output directory (created; must be empty unless --force)."),
        click.Option(["--force"], is_flag=True, help="Write into a non-empty output directory; with an interrupted "
                                                    "run there (and no --resume), start over."),
        *_model_params(),
    ]
    if resumable:
        params.append(click.Option(["--resume"], is_flag=True,
                                   help="Continue the interrupted run in OUT, keeping its finished pieces."))
    if spec.per_sequence:
        params.append(click.Option(["--chunk-size"], type=int, default=10_000, show_default=True,
                                   help="Sequences per chunk: each finished chunk is kept on disk for --resume."))
    params += _declared_options(spec.params)
    help_text = f"{spec.summary}\n\nSource: {spec.source}" if spec.source else spec.summary
    return click.Command(spec.name, params=params, callback=callback, help=help_text, context_settings=_CONTEXT)


def _declared_options(declared: Sequence[Any]) -> list[click.Parameter]:
    """click options for declared :class:`~interpkit.params.Param` values (bools as --x/--no-x)."""
    params: list[click.Parameter] = []
    for p in declared:
        if p.type is bool:
            # Progress bars are on by default when a person watches (stderr is a terminal).
            default = sys.stderr.isatty() if p.name == "verbose" else p.default
            params.append(click.Option([f"{p.flag}/--no-{p.flag[2:]}"], default=default, help=p.help))
            continue
        kind: Any = click.Choice(p.choices) if p.choices else p.type
        params.append(click.Option([p.flag], type=kind, default=p.default, help=p.help, show_default=True))
    return params


@cli.group("run", cls=_MethodGroup, context_settings=_CONTEXT)
def run_group() -> None:
    """Run one method: interpkit run METHOD MODEL --sequences FILE --out DIR [options]."""


def _method_options(pairs: Sequence[str], neuronmotif: str | None) -> dict[str, dict[str, Any]]:
    """``METHOD.NAME=VALUE`` pairs (and ``--neuronmotif LAYER[:CHANNELS]``) -> {method: {name: value}}, typed."""
    from interpkit.errors import InputError
    from interpkit.plugins import get_registry

    methods = get_registry().methods
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot:
            raise InputError(f"--option {pair!r} must be METHOD.NAME=VALUE, e.g. gia.n_backgrounds=500.")
        spec = methods.get(method)
        if spec is None:
            raise InputError(f"--option {pair!r}: no method {method!r}; methods: {', '.join(sorted(methods))}.")
        param = next((p for p in spec.params if p.name == name.replace("-", "_")), None)
        if param is None:
            raise InputError(f"--option {pair!r}: method {method!r} has no option {name!r}; its options: "
                             f"{', '.join(p.name for p in spec.params)}.")
        out.setdefault(method, {})[param.name] = _typed(param, text, pair)
    if neuronmotif:
        layer, _, channels = neuronmotif.partition(":")
        out.setdefault("neuronmotif", {}).update({"layer": layer, **({"neurons": channels} if channels else {})})
    return out


def _typed(param: Any, text: str, pair: str) -> Any:
    from interpkit.errors import InputError

    if param.type is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise InputError(f"--option {pair!r}: {param.name} is true or false.")
        return text.lower() in ("true", "1", "yes")
    try:
        return param.type(text)
    except ValueError:
        kind = {int: "an integer", float: "a number"}.get(param.type, "text")
        raise InputError(f"--option {pair!r}: {param.name} must be {kind}.") from None


@cli.command("explain", context_settings=_CONTEXT)
@click.argument("model", required=False)
@click.option("--sequences", "-s", help="FASTA or .npy of sequences (default with no MODEL: the embedded 500 "
                                        "CTCF peaks).")
@click.option("--out", "-o", required=True, help="Output directory (created; must be empty unless --force).")
@click.option("--force", is_flag=True, help="Write into a non-empty output directory.")
@click.option("--only", help="Run only these methods (comma-separated).")
@click.option("--skip", help="Methods not to run (comma-separated).")
@click.option("--neuronmotif", metavar="LAYER[:CHANNELS]", help="Also run NeuronMotif on this layer (slow), "
                                                                "e.g. conv2:0,3 or 4:0:8.")
@click.option("--option", "method_options", multiple=True, metavar="METHOD.NAME=VALUE",
              help="An option of one method, e.g. gia.n_backgrounds=500; repeatable. Asking runs a method that "
                   "is off by default.")
@_model_options
def explain_command(model: str | None, sequences: str | None, out: str, force: bool, only: str | None,
                    skip: str | None, neuronmotif: str | None, method_options: Sequence[str],
                    **load_options: Any) -> None:
    """Run every method that applies to MODEL and write OUT/report.html, motifs.meme and results.json.

    With no MODEL: the embedded default, an ExplaiNN trained by interpkit on 500 GM12878 CTCF peaks.
    """
    from interpkit.explain import explain

    def names(text: str | None) -> list[str]:
        return [t.strip() for t in (text or "").split(",") if t.strip()]

    options = {k: v for k, v in load_options.items() if v not in (None, False, ())}
    if "extra_inputs" in options:
        options["extra_inputs"] = _extra_inputs(options["extra_inputs"])
    run = explain(model, sequences, out=out, force=force, only=names(only) or None, skip=names(skip),
                  options=_method_options(method_options, neuronmotif), **options)
    for name, reason in run.skipped.items():
        click.echo(f"skipped {name}: {reason}", err=True)
    click.echo(str(run.report))


class _TrainGroup(click.Group):
    """``interpkit train``: one subcommand per architecture a plugin can train."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from interpkit.plugins import get_registry

        return sorted(name for name, spec in get_registry().models.items() if spec.train is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from interpkit.plugins import get_registry

        spec = get_registry().models.get(name)
        return None if spec is None or spec.train is None else _train_command(spec)


#: Data, split and output options of ``interpkit train ARCH`` (the architecture adds its own).
_DATA_OPTIONS = (
    (["--targets"], {"help": "TSV with a header: sequence name, then one column per target (binary 0/1, "
                             "multi-label or continuous)."}),
    (["--negatives"], {"help": "Without --targets: SEQUENCES are positives against negatives: 'dinuc' "
                               "(dinucleotide shuffles), 'gc' (GC-matched genome windows, needs --genome) or a "
                               "FASTA file."}),
    (["--n-negatives"], {"type": int, "help": "Number of generated negatives (default: as many as positives)."}),
    (["--bed"], {"help": "BED intervals instead of SEQUENCES: windows of --length bp read from --genome."}),
    (["--genome"], {"help": "Genome FASTA for --bed and for --negatives gc."}),
    (["--length"], {"type": int, "help": "Sequence length in bp (variable-length FASTA is centre-cropped or "
                                         "N-padded to it)."}),
    (["--alphabet"], {"default": "ACGT", "help": "Alphabet of the data: ACGT for DNA, ACGU for RNA (the trained "
                                                "model takes the same)."}),
    (["--task"], {"type": click.Choice(["binary", "multilabel", "regression"]),
                  "help": "Override the task read from the targets."}),
    (["--normalise"], {"type": click.Choice(["zscore", "clip", "log"]),
                       "help": "Normalise regression targets (clip: ResidualBind's clip at 4 SD, then z-score)."}),
    (["--valid"], {"type": float, "default": 0.1, "show_default": True, "help": "Validation fraction."}),
    (["--test"], {"type": float, "default": 0.1, "show_default": True, "help": "Test fraction."}),
    (["--random-state"], {"type": int, "default": 0, "show_default": True,
                          "help": "Seed of the negatives, the split, the initial weights and the batch order."}),
    (["--out", "-o"], {"required": True, "help": "Output directory (created; must be empty unless --force or "
                                                 "--resume)."}),
    (["--force"], {"is_flag": True, "help": "Write into a non-empty output directory (an interrupted run there "
                                            "starts over)."}),
    (["--resume"], {"is_flag": True, "help": "Continue the run interrupted in --out from its last finished epoch "
                                             "(OUT/train_state.pt, removed when the run completes); give the same "
                                             "data and options."}),
)


def _train_command(spec: Any) -> click.Command:
    def callback(sequences: str | None, targets: str | None, negatives: str | None, n_negatives: int | None,
                 bed: str | None, genome: str | None, length: int | None, alphabet: str, task: str | None,
                 normalise: str | None, valid: float, test: float, random_state: int, out: str, force: bool,
                 resume: bool, **options: Any) -> None:
        from interpkit.datasets import read_labelled
        from interpkit.training import check_train_out, train

        check_train_out(out, force=force, resume=resume)  # before reading data
        data = read_labelled(sequences, targets=targets, negatives=negatives, n_negatives=n_negatives, bed=bed,
                             genome=genome, length=length, alphabet=alphabet, task=task, normalise=normalise,
                             random_state=random_state)
        options = {k: v for k, v in options.items() if v is not None}
        result = train(spec.name, data, out=out, valid=valid, test=test, random_state=random_state, force=force,
                       resume=resume, **options)
        for path in sorted(Path(out).iterdir()):
            click.echo(str(path))
        click.echo(_metrics_line(result), err=True)

    params: list[click.Parameter] = [click.Argument(["sequences"], required=False)]
    params += [click.Option(flags, **kw) for flags, kw in _DATA_OPTIONS]
    params += _declared_options(spec.train_params)
    help_text = (f"Train {spec.name} on SEQUENCES (FASTA or .npy) or --bed/--genome windows, with --targets or "
                 f"--negatives; writes OUT/model.pth (best epoch) and OUT/model.json.\n\n{spec.summary}")
    return click.Command(spec.name, params=params, callback=callback, help=help_text, context_settings=_CONTEXT)


def _metrics_line(result: Any) -> str:
    rows = [r for r in result.tables["metrics"].records() if r["metric"] != "loss"]
    best = result.params.get("best_epoch")
    return f"best epoch {best}: " + ", ".join(f"{r['split']} {r['metric']} {r['target']} {r['value']:.3f}"
                                              for r in rows)


@cli.group("train", cls=_TrainGroup, context_settings=_CONTEXT)
def train_group() -> None:
    """Train a bundled architecture: interpkit train ARCH SEQUENCES (--targets TSV | --negatives ...) --out DIR."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``interpkit`` command; returns the exit status.

    0 on success, 2 for a user error (one line on stderr, no traceback; set
    ``INTERPKIT_DEBUG=1`` to see it), click's own status for usage errors.
    """
    show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="interpkit", standalone_mode=False)
    except InterpkitError as exc:
        if os.environ.get("INTERPKIT_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    finally:
        warnings.showwarning = show
    return 0


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Print interpkit's warnings as one ``warning: ...`` line; others as Python does."""
    from interpkit.errors import InterpkitWarning

    if issubclass(category, InterpkitWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), err=True)


if __name__ == "__main__":
    sys.exit(main())
