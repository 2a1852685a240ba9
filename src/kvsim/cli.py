"""Command-line interface: ``kvsim run | presets | trace stats | memory``.

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


# Options shared by the commands that write a run directory.
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory to write (default: none).")
]
SeedOption = Annotated[int | None, typer.Option(help="Override the config's seed.")]
NoPlotsOption = Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")]


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config file (applied over --preset).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", "-p", help="Built-in scenario; see `kvsim presets`.")
    ] = None,
    out: OutOption = None,
    seed: SeedOption = None,
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
    no_plots: NoPlotsOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            help="Calibration profile (shipped name, e.g. h100-llama3-70b, or a YAML file)"
            " applied after the preset and config file, before --set.",
        ),
    ] = None,
) -> None:
    """Run a full serving simulation and print its summary (and a per-GPU table when the
    cluster has several GPUs)."""
    from kvsim.api import simulate
    from kvsim.config.loader import load_config
    from kvsim.report.tables import render_per_gpu, render_summary

    if config is None and preset is None:
        preset = "default"
    progress = _LazyProgress(enabled=not quiet)
    try:
        cfg = load_config(
            config, preset=preset, overrides=set_ or (), seed=seed, calibration=calibration
        )
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
        render_per_gpu(result.summary, console)
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
    file: Annotated[Path, typer.Argument(help="Trace file (or directory: agentic, servegen).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="auto|mooncake|whitespace|seqcsv|azure|splitwise|burstgpt|agentic|lengths|"
            "servegen|generic",
        ),
    ] = "auto",
    limit: Annotated[
        int | None, typer.Option(help="Keep only the first N requests (after sorting).")
    ] = None,
    arrival_scale: Annotated[
        float, typer.Option("--arrival-scale", help="Multiply arrival times (>1 slows down).")
    ] = 1.0,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict/--no-strict", help="Fail on the first malformed row, or skip and report."
        ),
    ] = True,
    time_unit: Annotated[
        str | None,
        typer.Option(
            "--time-unit", help="s|ms|us: unit of numeric time stamps (default: the format's)."
        ),
    ] = None,
) -> None:
    """Validate a trace; print count, duration, rate, length percentiles and the load report."""
    import numpy as np
    from pydantic import ValidationError
    from rich.table import Table

    from kvsim.config.workload import TraceWorkload
    from kvsim.workload.stats import trace_stats as compute
    from kvsim.workload.traces import load_trace_with_report

    try:
        try:
            spec = TraceWorkload.model_validate(
                {
                    "path": str(file),
                    "format": fmt,
                    "limit": limit,
                    "arrival_scale": arrival_scale,
                    "strict": strict,
                    "time_unit": time_unit,
                }
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            option = str(err["loc"][0]).replace("_", "-")
            raise KvsimError(f"--{option}: {err['msg']}") from None
        reqs, report = load_trace_with_report(spec, np.random.default_rng(0))
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
    rep = Table(title=f"load report — format {report.format}")
    rep.add_column("field")
    rep.add_column("value", justify="right")
    for field, value in report.to_dict().items():
        if field in ("skipped_reasons", "details", "path", "format"):
            continue
        rep.add_row(field, f"{value}" if isinstance(value, bool) else f"{value:,}")
    for field, count in report.details.items():
        rep.add_row(f"details.{field}", f"{count:,}")
    console.print(rep)
    for reason in report.skipped_reasons:
        console.print(f"skipped: {reason}", markup=False, highlight=False, soft_wrap=True)


_MEMORY_TABLE = (
    ("peak_reserved_slots", "peak"),
    ("avg_utilisation", "util"),
    ("share_token_states", "tokens"),
    ("avg_external_frag_slots", "extfrag"),
    ("avg_running", "running"),
    ("failed_allocations", "failed"),
    ("compressions", "cmp"),
)


@app.command(
    "memory",
    epilog="`kvsim memory demo-fragmentation` runs the torch paged-KV fragmentation demo "
    "(needs the torch extra); `kvsim memory presets` lists the memory presets.",
)
def memory(
    config: Annotated[
        str | None,
        typer.Argument(
            help="YAML config (over --preset), or `demo-fragmentation`, or `presets`.",
            metavar="[CONFIG|demo-fragmentation|presets]",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Built-in memory study; see `kvsim memory presets`."),
    ] = None,
    out: OutOption = None,
    seed: SeedOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a key: a.b.c=value, allocators.0.block_size=8."),
    ] = None,
    no_plots: NoPlotsOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table.")] = False,
) -> None:
    """Allocator study: contiguous vs reservation vs paged vs compressed KV memory."""
    if config == "demo-fragmentation":
        _memory_demo()
        return
    if config == "presets":
        _memory_presets()
        return
    from kvsim.memory.config import load_memory_config
    from kvsim.memory.study import run_memory_study

    if config is None and preset is None:
        preset = "default"
    overrides = [*(set_ or ()), *(["plots=false"] if no_plots else [])]
    try:
        cfg = load_memory_config(config, preset=preset, overrides=overrides, seed=seed)
        result = run_memory_study(cfg, out_dir=out)
    except KvsimError as exc:
        _fail(exc)
        return
    if quiet:
        return
    title = f"kvsim memory — {preset or config} (seed {cfg.seed})"
    _render_memory_table(result.summary["models"], title)
    if out:
        console.print(f"outputs in {out}")


def _render_memory_table(models: dict[str, Any], title: str) -> None:
    """Print one row per allocator with the headline figures of its summary."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    table.add_column("allocator", no_wrap=True)
    for _, head in _MEMORY_TABLE:
        table.add_column(head, justify="right", no_wrap=True, min_width=len(head))
    for label, stats in models.items():
        table.add_row(label, *(_memory_cell(key, stats.get(key)) for key, _ in _MEMORY_TABLE))
    console.print(table)
    console.print(
        "peak: reserved slots; util: token states / reserved; tokens: token states / capacity "
        "(saturated steps); running: sequences held at once. All figures: summary.json.",
        highlight=False,
    )


def _memory_cell(key: str, value: object) -> str:
    if key in ("avg_utilisation", "share_token_states") and isinstance(value, float):
        return f"{100 * value:.1f}%" if value == value else "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _memory_presets() -> None:
    from rich.table import Table

    from kvsim.memory.config import list_memory_presets

    table = Table(title="kvsim memory presets")
    table.add_column("name")
    table.add_column("description")
    for pname, desc in list_memory_presets():
        table.add_row(pname, desc)
    console.print(table)


def _memory_demo() -> None:
    """Run the torch paged-KV fragmentation demo, or say in one line that torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        _fail(KvsimError("the fragmentation demo needs torch: pip install 'kvsim[torch]'"))
        return
    try:
        from kvsim.tensor.demo import run_fragmentation_demo
    except ImportError as exc:
        _fail(KvsimError(f"the fragmentation demo cannot be loaded: {exc}"))
        return
    run_fragmentation_demo(console)


def _register_commands() -> None:
    """Attach the sub-commands that live in ``kvsim.commands.*``."""
    import importlib

    from kvsim.commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        importlib.import_module(f"kvsim.commands.{name}").register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
