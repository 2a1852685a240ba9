"""`kvsim sweep` and `kvsim search`: config sweeps (local or Ray, resumable) and capacity search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

BackendOption = Annotated[str, typer.Option("--backend", "-b", help="local (process pool) or ray.")]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", "-w", help="Worker processes (local) or CPUs (local Ray); default: all cores."
    ),
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address, e.g. ray://head:10001.")
]
SweepOutOption = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Add to the spec's `set`: a.b.c=value (repeatable)."),
]


def _with_sets(spec: Any, sets: list[str] | None) -> Any:
    """``spec`` with ``--set`` overrides merged into its fixed ``set`` mapping."""
    if not sets:
        return spec
    from kvsim.config.loader import parse_override

    extra = {}
    for text in sets:
        parts, value = parse_override(text)
        extra[".".join(parts)] = value
    clash = sorted(set(extra) & set(spec.axis_keys))
    if clash:
        from kvsim.errors import ConfigError

        raise ConfigError(clash[0], "is a sweep axis; --set cannot fix it")
    return spec.model_copy(update={"set_": {**spec.set_, **extra}})


class _SweepProgress:
    """A rich progress bar: points done / failed / ETA (nothing when ``enabled`` is False)."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, done: int, failed: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            from kvsim.cli import err_console

            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, failed=0)
            # Points skipped on resume are not progress of this run: reset the ETA base.
            self.progress.update(self.task, completed=done, failed=failed)
            self.progress.reset(self.task, total=total, completed=done, failed=failed)
            return
        self.progress.update(self.task, completed=done, failed=failed)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _list_sweeps() -> None:
    from rich.table import Table

    from kvsim.cli import console
    from kvsim.sweep.spec import builtin_sweeps

    table = Table(title="kvsim built-in sweeps")
    table.add_column("name")
    table.add_column("description")
    for name, desc in builtin_sweeps():
        table.add_row(name, desc)
    console.print(table)


def _print_sweep_table(df: Any, axis_keys: list[str], title: str) -> None:
    from rich.table import Table

    from kvsim.cli import console

    metrics = [
        c
        for c in (
            "p99_ttft_ms",
            "p99_tpot_ms",
            "throughput_tokens_per_sec",
            "hit_ratio_blocks",
            "hit_ratio_tokens",
        )
        if c in df.columns
    ]
    cols = ["point", *axis_keys, "seed", "status", *metrics]
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right" if c not in ("status",) else "left")
    shown = df.head(40)
    for _, row in shown.iterrows():
        table.add_row(*(_fmt(row.get(c)) for c in cols))
    console.print(table)
    if len(df) > len(shown):
        console.print(f"... {len(df) - len(shown)} more rows in results.csv")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.1f}"
    return "" if v is None else str(v)


def sweep(
    spec: Annotated[
        str | None, typer.Argument(help="Sweep spec YAML, or the name of a built-in sweep.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (resumable).")
    ] = None,
    backend: BackendOption = "local",
    workers: WorkersOption = None,
    address: AddressOption = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Rerun points that failed before.")
    ] = False,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip all PNG plots.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the built-in sweeps.")] = False,
    set_: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
) -> None:
    """Run a config sweep: grid/zip/random axes x seeds, one run directory per point.

    Rerunning the same command resumes: finished points are skipped.
    """
    from kvsim.cli import _fail, console
    from kvsim.errors import KvsimError

    if list_:
        _list_sweeps()
        return
    if spec is None or out is None:
        _fail(KvsimError("give a spec (file or built-in name; see --list) and --out DIR"))
        return
    from kvsim.sweep import load_sweep_spec, run_sweep

    progress = _SweepProgress("sweep points", enabled=not quiet)
    try:
        sw, spec_dir = load_sweep_spec(spec)
        sw = _with_sets(sw, set_)
        run = run_sweep(
            sw,
            out,
            spec_dir=spec_dir,
            backend=backend,
            workers=workers,
            address=address,
            retry_failed=retry_failed,
            plots=not no_plots,
            on_progress=progress,
        )
    except KvsimError as exc:
        progress.close()
        _fail(exc)
        return
    progress.close()
    if quiet:
        return
    _print_sweep_table(run.table, sw.axis_keys, f"kvsim sweep — {sw.name}")
    console.print(
        f"{len(run.points)} points: {run.num_ran} run now, {run.num_skipped} already done, "
        f"{run.num_failed} failed; results in {out}/results.csv"
    )


def search(
    spec: Annotated[Path, typer.Argument(help="Search spec YAML.")],
    out: SweepOutOption,
    backend: BackendOption = "local",
    workers: WorkersOption = None,
    address: AddressOption = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the Pareto plot.")] = False,
    set_: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
) -> None:
    """Capacity search: max request rate meeting the SLOs per config, cheapest per target."""
    from kvsim.cli import _fail
    from kvsim.errors import KvsimError
    from kvsim.sweep.search import load_search_spec, run_search

    progress = _SweepProgress("configs searched", enabled=not quiet)
    try:
        sp, spec_dir = load_search_spec(spec)
        sp = _with_sets(sp, set_)
        result = run_search(
            sp,
            out,
            spec_dir=spec_dir,
            backend=backend,
            workers=workers,
            address=address,
            plots=not no_plots,
            on_progress=progress,
        )
    except KvsimError as exc:
        progress.close()
        _fail(exc)
        return
    progress.close()
    if not quiet:
        _print_search(result, sp.axis_keys, out)


def _print_search(result: Any, axis_keys: list[str], out: Path) -> None:
    from rich.table import Table

    from kvsim.cli import console

    cols = [
        "config",
        *axis_keys,
        "num_gpus",
        "max_rate",
        "status",
        "cost_per_hour_usd",
        "cost_per_1m_requests_usd",
    ]
    heads = {
        "num_gpus": "GPUs",
        "max_rate": "max req/s",
        "cost_per_hour_usd": "USD/h",
        "cost_per_1m_requests_usd": "USD/1M req",
    }
    table = Table(title="kvsim search — max rate meeting the SLOs")
    for c in cols:
        table.add_column(heads.get(c, c.rsplit(".", 1)[-1]), justify="right")
    for row in result.rows:
        table.add_row(*(_fmt(row.get(c)) for c in cols))
    console.print(table)
    for best in result.cheapest:
        if best.get("config") is None:
            console.print(f"target {best['target_rate']:g} req/s: no config meets the SLOs")
            continue
        axes = ", ".join(f"{k}={v}" for k, v in best["axes"].items())
        console.print(
            f"target {best['target_rate']:g} req/s: config {best['config']} ({axes}) "
            f"x{best['replicas']} = {best['num_gpus']} GPUs, "
            f"{best['cost_per_hour_usd']:,.2f} USD/h",
            highlight=False,
        )
    console.print(f"results in {out}/search.csv, search.json")


def register(app: typer.Typer) -> None:
    """Add ``sweep`` and ``search`` to the root app."""
    app.command("sweep")(sweep)
    app.command("search")(search)
