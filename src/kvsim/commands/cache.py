"""``kvsim cache``: replay a trace through tiered KV caches for several policies and capacities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

_TABLE = (
    ("hit_ratio_blocks", "hit\nblk"),
    ("hit_ratio_tokens", "hit\ntok"),
    ("top_hit_ratio_blocks", "top\nblk"),
    ("mean_ttft_ms", "ttft\nms"),
    ("ttft_saving_ms", "saved\nms"),
)
_PREFETCH = (("prefetch_hit_ratio", "pf\nused"),)
_RACKS = (("hit_ratio_blocks_remote_pool", "xrack\nblk"), ("load_skew_racks", "rack\nskew"))


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _tier_overrides(text: str | None) -> list[str]:
    """``hbm=10k,dram=100k,ssd=1M`` -> ``--set tiers=[...]`` (default transfer figures by
    name; each tier's policy is the grid's, or lru)."""
    if not text:
        return []
    items = []
    for part in _split(text):
        name, sep, cap = part.partition("=")
        if not sep or not name.strip() or not cap.strip():
            from kvsim.errors import ConfigError

            raise ConfigError("--tiers", f"expected NAME=CAPACITY[,NAME=CAPACITY...], got {part!r}")
        items.append(f"{{name: {name.strip()}, capacity: '{cap.strip()}'}}")
    return [f"tiers=[{', '.join(items)}]"]


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if "hit_ratio" in key:
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return _count(value) if isinstance(value, int) else str(value)


def _count(value: int) -> str:
    """1234 -> 1234, 56789 -> 56.8k, 1234567 -> 1.23M."""
    if value < 10_000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1e3:.1f}k"
    return f"{value / 1e6:.2f}M"


def _render(table: Any, title: str) -> None:
    from rich import box
    from rich.table import Table

    from kvsim.cli import console

    cols = _TABLE + (_PREFETCH if table["prefetch_issued"].sum() > 0 else ())
    cols += tuple(c for c in _RACKS if c[0] in table.columns and table["num_racks"].max() > 1)
    out = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    out.add_column("policy", no_wrap=True)
    out.add_column("capacity", no_wrap=True)
    for _, head in cols:
        out.add_column(head, justify="right", no_wrap=True)
    for row in table.to_dict("records"):
        row["top_hit_ratio_blocks"] = row.get(f"hit_ratio_blocks_{row['top_tier']}")
        issued = row.get("prefetch_issued") or 0
        row["prefetch_hit_ratio"] = row["prefetch_used"] / issued if issued else None
        cap = f"{row['capacity']} ({_count(row['capacity_blocks'])})"
        out.add_row(str(row["policy"]), cap, *(_cell(k, row.get(k)) for k, _ in cols))
    console.print(out)
    console.print(
        "capacity: top tier per worker (blocks); hit blk/tok: block- and token-weighted hit "
        "ratios of all tiers, warm-up excluded; top blk: hits served by the top tier; ttft: "
        "mean prefill of missed tokens + loads from lower tiers; saved: vs no cache"
        + ("; pf used: prefetched blocks hit before eviction" if _PREFETCH[0] in cols else "")
        + ("; xrack: hits read from another rack's pool" if _RACKS[0] in cols else "")
        + ("; rack skew: max/mean requests per rack" if _RACKS[1] in cols else "")
        + ". All figures: results.csv.",
        highlight=False,
    )


def cache(
    trace: Annotated[
        str | None, typer.Argument(help="Trace file (Mooncake JSONL, ...); overrides the workload.")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Built-in cache scenario (`--preset list`)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (applied over --preset).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Comma-separated eviction policies (set on every tier).")
    ] = None,
    capacity: Annotated[
        str | None,
        typer.Option(help="Comma-separated top-tier capacities: 1k, 2.5M, 40GiB, 100ktok, 10%."),
    ] = None,
    tiers: Annotated[
        str | None, typer.Option(help="Tier stack, top first: hbm=10k,dram=100k,ssd=1M.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Number of workers.")] = None,
    router: Annotated[
        str | None, typer.Option(help="prefix_aware | round_robin | session_affinity.")
    ] = None,
    warmup: Annotated[
        float | None, typer.Option(help="Fraction of requests (by arrival) excluded from metrics.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a key: a.b.c=value, tiers.0.policy=arc."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    calibration: Annotated[
        str | None,
        typer.Option(
            help="Calibration profile (shipped name or YAML file; `--calibration list`): "
            "hardware, network, time-model and tier figures over the config."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to write.")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress.")] = False,
) -> None:
    """Replay a trace through N workers' tier stacks: hit ratios, TTFT saving, per tier."""
    from kvsim.cli import _fail, console
    from kvsim.errors import KvsimError

    if preset == "list":
        _list_presets()
        return
    if calibration == "list":
        _list_profiles()
        return
    if config is None and preset is None:
        preset = "default"
    try:
        overrides = _overrides(trace, tiers, workers, router, warmup, no_plots, set_)
        _run(preset, config, overrides, seed, policy, capacity, out, quiet, calibration)
    except KvsimError as exc:
        _fail(exc)
        return
    if out and not quiet:
        console.print(f"outputs in {out}")


def _overrides(
    trace: str | None,
    tiers: str | None,
    workers: int | None,
    router: str | None,
    warmup: float | None,
    no_plots: bool,
    set_: list[str] | None,
) -> list[str]:
    overrides: list[str] = []
    if trace is not None:
        # the trace's own hash block size, unless --set block_size=... says otherwise
        overrides += [f"workload={{kind: trace, path: '{trace}'}}", "block_size=null"]
    overrides += _tier_overrides(tiers)
    if workers is not None:
        overrides.append(f"workers={workers}")
    if router is not None:
        overrides.append(f"router={router}")
    if warmup is not None:
        overrides.append(f"warmup_fraction={warmup}")
    if no_plots:
        overrides.append("outputs.plots=false")
    return overrides + list(set_ or ())


def _run(
    preset: str | None,
    config: Path | None,
    overrides: list[str],
    seed: int | None,
    policy: str | None,
    capacity: str | None,
    out: Path | None,
    quiet: bool,
    calibration: str | None = None,
) -> None:
    from kvsim.cache.config import load_cache_config
    from kvsim.cache.grid import run_grid
    from kvsim.cli import err_console

    cfg = load_cache_config(
        config, preset=preset, overrides=overrides, seed=seed, calibration=calibration
    )
    progress = None if quiet else _progress(err_console)
    task: Any = None

    def on_point(done: int, total: int, label: str) -> None:
        nonlocal task
        if progress is None:
            return
        if task is None:
            task = progress.add_task("points", total=None)
        progress.update(task, description=f"point {min(done + 1, total)}/{total} {label}")

    def on_progress(done: int, total: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=done, total=total)

    try:
        result = run_grid(
            cfg,
            _split(policy),
            _split(capacity),
            out_dir=out,
            on_point=on_point,
            on_progress=on_progress,
        )
    finally:
        if progress is not None:
            progress.stop()
    if not quiet:
        title = f"kvsim cache — {preset or config} (seed {cfg.seed}, {cfg.workers} worker(s))"
        if cfg.workers_per_rack is not None:
            title = title[:-1] + f", {cfg.num_racks} rack(s))"
        _render(result.table, title)
        if cfg.calibration is not None:
            from kvsim.cli import console

            console.print(f"calibration {cfg.calibration} applied (run_meta.json)", highlight=False)


def _progress(err_console: Any) -> Any:
    """A started rich progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )
    progress.start()
    return progress


def _list_presets() -> None:
    from rich.table import Table

    from kvsim.cache.config import list_cache_presets
    from kvsim.cli import console

    table = Table(title="kvsim cache presets")
    table.add_column("name")
    table.add_column("description")
    for pname, desc in list_cache_presets():
        table.add_row(pname, desc)
    console.print(table)


def _list_profiles() -> None:
    from rich.table import Table

    from kvsim.cli import console
    from kvsim.config.calibration import list_profiles

    table = Table(title="calibration profiles")
    table.add_column("name")
    table.add_column("description")
    for pname, desc in list_profiles():
        table.add_row(pname, desc)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``kvsim cache`` to the root app."""
    app.command("cache")(cache)
