"""`kvsim convert`: translate other simulators' inputs into kvsim configs.

``kvsim convert kv-sim-config OLD.txt [--trace TRACE] [-o new.yaml]`` reads the seed-002
``kv_sim`` key-value config (README and parser spellings, see
:mod:`kvsim.config.convert_kvsim`) and prints the equivalent kvsim YAML, or writes it
atomically to ``-o``. ``--check`` also validates the result against the kvsim schema. Errors
print one line (``error: OLD.txt:7: unknown key 'foo'; known: ...``) and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

convert_app = typer.Typer(
    help="Translate other simulators' configs into kvsim YAML.", no_args_is_help=True
)


@convert_app.command("kv-sim-config")
def kv_sim_config(
    config: Annotated[Path, typer.Argument(help="The old kv_sim key-value config file.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the YAML here (default: standard output)."),
    ] = None,
    trace: Annotated[
        str | None,
        typer.Option(
            "--trace", "-t", help="Trace file (old whitespace format) to use as the workload."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Also validate the result against kvsim's schema.")
    ] = False,
) -> None:
    """Translate a seed-002 kv_sim config (globals, `gpu N ...`, `link a b bw lat`)."""
    from kvsim.cli import _fail, console, err_console
    from kvsim.config.convert_kvsim import convert_kvsim_file, to_yaml
    from kvsim.errors import KvsimError

    try:
        data = convert_kvsim_file(config, trace=trace)
        if check:
            from kvsim.config.loader import validate_config

            validate_config(data)
        text = to_yaml(data, source=config.name)
        if out is None:
            console.file.write(text)
            console.file.flush()
        else:
            from kvsim.report.atomic import atomic_write_text

            try:
                atomic_write_text(out, text)
            except OSError as exc:
                raise KvsimError(f"cannot write {out}: {exc.strerror}") from None
    except KvsimError as exc:
        _fail(exc)
        return
    if trace is None:
        err_console.print(
            "note: no --trace given; the config keeps kvsim's synthetic workload", highlight=False
        )
    if out is not None:
        err_console.print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``kvsim convert ...`` to the root app."""
    app.add_typer(convert_app, name="convert")
