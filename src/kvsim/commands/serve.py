"""`kvsim serve`: the web dashboard (FastAPI + uvicorn from the ``web`` extra, imported lazily)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["is_loopback", "register"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    """Add ``kvsim serve`` to the root app."""

    @app.command()
    def serve(
        host: Annotated[
            str, typer.Option(help="Address to bind; anything but loopback exposes the server.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        runs_dir: Annotated[
            Path, typer.Option("--runs-dir", help="Where runs and uploaded traces are stored.")
        ] = Path("runs/web"),
        workers: Annotated[
            int, typer.Option("--workers", min=1, help="Simulations that run at once.")
        ] = 1,
        max_queued: Annotated[
            int, typer.Option("--max-queued", min=0, help="Runs that may wait (then HTTP 429).")
        ] = 8,
        max_requests: Annotated[
            int, typer.Option("--max-requests", min=1, help="Cap on requests per run.")
        ] = 20_000,
        max_sim_time: Annotated[
            float, typer.Option("--max-sim-time", min=0.001, help="Cap on simulated s per run.")
        ] = 3_600.0,
        max_upload_mb: Annotated[
            float, typer.Option("--max-upload-mb", min=0.001, help="Largest trace upload, MiB.")
        ] = 64.0,
        cors_origin: Annotated[
            list[str] | None,
            typer.Option("--cors-origin", help="Allow this browser origin (repeatable; no '*')."),
        ] = None,
    ) -> None:
        """Serve the web dashboard: configure, run, watch and compare simulations."""
        _serve(
            host,
            port,
            runs_dir,
            {
                "max_workers": workers,
                "max_queued": max_queued,
                "max_requests_per_run": max_requests,
                "max_sim_time_s": max_sim_time,
                "max_upload_bytes": int(max_upload_mb * 1024 * 1024),
                "cors_origins": tuple(cors_origin or ()),
            },
        )


def _serve(host: str, port: int, runs_dir: Path, options: dict[str, Any]) -> None:
    """Build the app (one-line errors, warning off loopback) and run uvicorn."""
    from kvsim.cli import _fail, err_console
    from kvsim.errors import KvsimError

    try:
        import uvicorn

        from kvsim.web import create_app
    except ImportError as exc:
        _fail(KvsimError(f"the dashboard needs the web extra ({exc.name} is missing): "
                         "pip install 'kvsim[web]'"))
        return
    loopback = is_loopback(host)
    if not loopback:
        err_console.print(
            f"[bold yellow]warning:[/] binding {host}: the dashboard has no authentication "
            "and anyone who can reach this address can run simulations and upload files",
            highlight=False,
        )
    # Host-header check against DNS rebinding (IPv4/name only: starlette cannot parse a
    # bracketed IPv6 Host header).
    hosts = [*LOOPBACK_HOSTS, host] if loopback and ":" not in host else None
    try:
        web = create_app(runs_dir, allowed_hosts=hosts, **options)
    except KvsimError as exc:
        _fail(exc)
        return
    problem = _bind_problem(host, port)
    if problem:
        _fail(KvsimError(f"cannot serve on {host}:{port}: {problem}"))
        return
    shown = f"[{host}]" if ":" in host else host
    err_console.print(f"kvsim dashboard on http://{shown}:{port}/ (runs in {runs_dir})")
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning")
    except OSError as exc:
        _fail(KvsimError(f"cannot serve on {host}:{port}: {exc.strerror or exc}"))


def _bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (in use, no such address), or None if it can."""
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
