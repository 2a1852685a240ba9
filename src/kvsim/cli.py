"""Command-line interface: ``kvsim run | presets | trace stats``.

Every user error (bad config, bad trace) prints one line ``error: ...`` and exits with 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kvsim.errors import KvsimError

app = typer.Typer(
    name="kvsim",
    help="Simulate KV-cache memory in LLM serving: continuous batching, paged KV, prefix caching.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
trace_app = typer.Typer(help="Inspect and validate request traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")

console = Console()
err_console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class _LazyProgress:
    """A rich progress bar that appears only once a run has taken more than ``delay_s``."""

    def __init__(self, delay_s: float = 2.0, enabled: bool = True) -> None:
        self.delay_s = delay_s
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.t0 < self.delay_s:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("simulating arrivals", total=total)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config file (applied over --preset).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", "-p", help="Built-in scenario; see `kvsim presets`.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory to write (default: none).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a key: a.b.c=value (repeatable)."),
    ] = None,
    exact_steps: Annotated[
        bool, typer.Option("--exact-steps", help="Simulate every iteration (no fast-forward).")
    ] = False,
    events: Annotated[
        bool, typer.Option("--events", help="Stream every lifecycle event to events.jsonl.")
    ] = False,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
) -> None:
    """Run a full serving simulation and print its summary."""
    from kvsim.api import simulate
    from kvsim.config.loader import load_config
    from kvsim.report.tables import render_summary

    if config is None and preset is None:
        preset = "default"
    progress = _LazyProgress(enabled=not quiet)
    try:
        cfg = load_config(config, preset=preset, overrides=set_ or (), seed=seed)
        result = simulate(
            cfg,
            exact_steps=exact_steps,
            out_dir=out,
            events=events or None,
            plots=False if no_plots else None,
            on_progress=progress,
        )
    except KvsimError as exc:
        progress.close()
        _fail(exc)
        return
    progress.close()
    if not quiet:
        title = f"kvsim run — {preset or config} (seed {cfg.seed})"
        render_summary(result.summary, console, title)
        cpu = result.meta.get("cpu_time_s", 0.0)
        console.print(
            f"{result.summary['num_events']} events, "
            f"{result.summary['events_per_request']:.2f} per request, {cpu:.2f} CPU s"
            + (f"; outputs in {out}" if out else "")
        )


@app.command()
def presets(
    name: Annotated[str | None, typer.Argument(help="Show this preset's YAML.")] = None,
) -> None:
    """List the built-in scenarios, or print one."""
    from kvsim.config.loader import list_presets, preset_text

    try:
        if name:
            console.print(preset_text(name), markup=False, highlight=False)
            return
        from rich.table import Table

        table = Table(title="kvsim presets")
        table.add_column("name")
        table.add_column("description")
        for pname, desc in list_presets():
            table.add_row(pname, desc)
        console.print(table)
    except KvsimError as exc:
        _fail(exc)


@trace_app.command("stats")
def trace_stats(
    file: Annotated[Path, typer.Argument(help="Trace file.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="auto|mooncake|whitespace|seqcsv|azure")
    ] = "auto",
    limit: Annotated[int | None, typer.Option(help="Read only the first N requests.")] = None,
) -> None:
    """Validate a trace and print count, duration, rate and length percentiles."""
    import numpy as np
    from pydantic import ValidationError
    from rich.table import Table

    from kvsim.config.workload import TraceWorkload
    from kvsim.workload.stats import trace_stats as compute
    from kvsim.workload.traces import load_workload

    try:
        try:
            spec = TraceWorkload(path=str(file), format=fmt, limit=limit)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            raise KvsimError(f"--{err['loc'][0]}: {err['msg']}") from None
        reqs = load_workload(spec, np.random.default_rng(0))
        stats = compute(reqs)
    except KvsimError as exc:
        _fail(exc)
        return
    table = Table(title=f"trace stats — {file}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, val in stats.items():
        table.add_row(key, f"{val:,.3f}" if isinstance(val, float) else f"{val:,}")
    console.print(table)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
