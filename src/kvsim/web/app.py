"""The dashboard's FastAPI application: JSON API (with OpenAPI) and the static page.

``create_app(runs_dir)`` builds a self-contained app; nothing is global, so tests make as many
as they like. Security model (see docs/web.md): ids are made by the server and checked by regex,
every path is resolved and checked to lie inside ``runs_dir``, request bodies are size-limited,
configs go through the same pydantic schema as the CLI, no CORS unless origins are given.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from kvsim import __version__
from kvsim.errors import ConfigError, KvsimError
from kvsim.web.configs import Caps, prepare_config
from kvsim.web.limits import BodySizeLimit, SecurityHeaders
from kvsim.web.models import (
    Catalog,
    ErrorBody,
    PresetInfo,
    RunInfo,
    RunRequest,
    TableData,
    UploadInfo,
    ValidationResult,
)
from kvsim.web.runner import QueueFullError, RunManager, Runner, simulate_runner
from kvsim.web.store import RUN_ID_PATTERN, UnsafePathError, run_path
from kvsim.web.tables import (
    clean_json,
    events_page,
    frame_to_table,
    read_requests,
    read_timeseries,
)
from kvsim.web.uploads import list_uploads, store_upload

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"
_PENDING = ("queued", "running")

RunId = Annotated[str, PathParam(pattern=RUN_ID_PATTERN, description="server-made run id")]
PresetName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Columns = Annotated[
    str | None, Query(max_length=2000, description="comma-separated column names (default all)")
]


def _errors(status: int, detail: str, errors: Sequence[dict[str, str]] = ()) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": list(errors)}, status_code=status)


def _config_error(exc: ConfigError) -> JSONResponse:
    return _errors(422, str(exc), [{"path": exc.path, "message": exc.message}])


_Responses = dict[int | str, dict[str, Any]]
_R404: _Responses = {404: {"model": ErrorBody, "description": "no such run"}}
_R409: _Responses = {409: {"model": ErrorBody, "description": "the run has not finished"}}
_R422: _Responses = {422: {"model": ErrorBody, "description": "invalid input (with key paths)"}}


@dataclass(slots=True)
class WebContext:
    """What the route handlers share: the runs directory, its manager and the limits."""

    root: Path
    runs: RunManager
    caps: Caps
    max_upload_bytes: int


def create_app(
    runs_dir: Path,
    *,
    max_workers: int = 1,
    max_queued: int = 8,
    max_requests_per_run: int = 20_000,
    max_sim_time_s: float = 3_600.0,
    max_upload_bytes: int = 64 * 1024 * 1024,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    runner: Runner = simulate_runner,
) -> FastAPI:
    """Build the dashboard app serving ``runs_dir`` (created if missing).

    ``max_workers`` simulations run at once and ``max_queued`` more may wait (then 429);
    ``max_requests_per_run`` / ``max_sim_time_s`` cap each run (422 naming the limit);
    uploads above ``max_upload_bytes`` get 413. ``cors_origins`` (never ``*``) enables CORS for
    exactly those origins; ``allowed_hosts`` enables a Host-header check (DNS rebinding).
    """
    if "*" in cors_origins:
        raise ConfigError("cors_origins", "a wildcard origin is not allowed; name the origins")
    root = Path(runs_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = WebContext(
        root=root,
        runs=RunManager(root, max_workers=max_workers, max_queued=max_queued, runner=runner),
        caps=Caps(max_requests_per_run=max_requests_per_run, max_sim_time_s=max_sim_time_s),
        max_upload_bytes=max_upload_bytes,
    )
    app = FastAPI(
        title="kvsim dashboard",
        version=__version__,
        description="Configure, run, watch and compare kvsim serving simulations.",
        responses={
            400: {"model": ErrorBody, "description": "malformed request body"},
            413: {"model": ErrorBody, "description": "request body too large"},
            **_R422,
        },
    )
    app.state.ctx = ctx
    app.state.runs = ctx.runs
    _install_middleware(app, ctx, cors_origins, allowed_hosts)
    _meta_routes(app, ctx)
    _config_routes(app, ctx)
    _run_routes(app, ctx)
    _stream_routes(app, ctx)
    _data_routes(app, ctx)
    _upload_routes(app, ctx)
    _static_routes(app)
    app.router.add_event_handler("shutdown", ctx.runs.shutdown)
    return app


def _install_middleware(
    app: FastAPI, ctx: WebContext, cors: Sequence[str], hosts: Sequence[str] | None
) -> None:
    app.add_middleware(BodySizeLimit, max_bytes=ctx.max_upload_bytes + 64 * 1024)
    app.add_middleware(SecurityHeaders)
    if hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST", "DELETE"]
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg"))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"path": "", "message": "invalid request"}
        return _errors(422, f"{first['path']}: {first['message']}", errors)


def _meta_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/api/info", tags=["meta"])
    def info() -> dict[str, Any]:
        """Server version and limits."""
        return {
            "version": __version__,
            "max_workers": ctx.runs.max_workers,
            "max_queued": ctx.runs.max_queued,
            "max_requests_per_run": ctx.caps.max_requests_per_run,
            "max_sim_time_s": ctx.caps.max_sim_time_s,
            "max_upload_bytes": ctx.max_upload_bytes,
        }

    @app.get("/api/presets", tags=["meta"])
    def presets() -> list[PresetInfo]:
        """The built-in scenarios."""
        from kvsim.config.loader import list_presets

        return [PresetInfo(name=n, description=d) for n, d in list_presets()]

    @app.get("/api/presets/{name}", tags=["meta"], responses=_R404)
    def preset(name: PresetName) -> Any:
        """A preset as a full config (every default filled in)."""
        from kvsim.config.loader import load_config

        try:
            return load_config(preset=name).model_dump(mode="json")
        except ConfigError as exc:
            return _errors(404, str(exc))

    @app.get("/api/catalog", tags=["meta"])
    def catalog() -> Catalog:
        """Built-in models (with kv_bytes_per_token) and GPUs."""
        from kvsim.config.catalog import gpu_catalog, model_catalog

        models = [
            {"id": key, **m.model_dump(mode="json"), "kv_bytes_per_token": m.kv_bytes_per_token}
            for key, m in model_catalog().items()
        ]
        gpus = [{"id": key, **g.model_dump(mode="json")} for key, g in gpu_catalog().items()]
        return Catalog(models=models, gpus=gpus)



def _config_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/api/choices", tags=["meta"])
    def choices() -> dict[str, list[str]]:
        """Registered names per config key path (routers, queue policies, trace formats...)."""
        from kvsim.web.choices import registry_choices

        return registry_choices()

    @app.get("/api/schema", tags=["meta"])
    def schema() -> dict[str, Any]:
        """The JSON schema of a run config (drives the page's form)."""
        from kvsim.config.schema import SimConfig

        return SimConfig.model_json_schema()

    @app.post("/api/validate", tags=["runs"])
    def validate(body: RunRequest) -> ValidationResult:
        """Check a config (merged over ``preset``) exactly as ``POST /api/runs`` would."""
        try:
            prepared = prepare_config(body.config, body.preset, ctx.root, ctx.caps)
        except ConfigError as exc:
            return ValidationResult(
                valid=False, errors=[{"path": exc.path, "message": exc.message}]  # type: ignore[list-item]
            )
        except KvsimError as exc:
            return ValidationResult(valid=False, errors=[{"path": "", "message": str(exc)}])  # type: ignore[list-item]
        return ValidationResult(
            valid=True, errors=[], config=prepared.config.model_dump(mode="json")
        )


def _run_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.post(
        "/api/runs",
        tags=["runs"],
        status_code=201,
        responses={**_R422, 429: {"model": ErrorBody, "description": "too many pending runs"}},
    )
    def start_run(body: RunRequest) -> Any:
        """Validate and queue a run. 422 names the config key (or the server limit)."""
        try:
            prepared = prepare_config(body.config, body.preset, ctx.root, ctx.caps)
        except ConfigError as exc:
            return _config_error(exc)
        except KvsimError as exc:
            return _errors(422, str(exc))
        try:
            rec = ctx.runs.submit(
                prepared.config, label=body.label, preset=body.preset, notes=prepared.notes
            )
        except QueueFullError as exc:
            return _errors(429, str(exc))
        return JSONResponse(rec.info(), status_code=201)

    @app.get("/api/runs", tags=["runs"])
    def list_runs() -> list[RunInfo]:
        """Every run in the runs directory, newest first."""
        return [RunInfo.model_validate(r) for r in ctx.runs.list_runs()]

    @app.get("/api/runs/{run_id}", tags=["runs"], responses=_R404)
    def get_run(run_id: RunId) -> RunInfo:
        rec = ctx.runs.get(run_id)
        if rec is None:
            return _errors(404, f"no run {run_id}")  # type: ignore[return-value]
        return RunInfo.model_validate(rec.info())

    @app.get("/api/runs/{run_id}/config", tags=["runs"], responses=_R404)
    def get_config(run_id: RunId) -> Any:
        """The validated config the run used (server caps applied)."""
        rec = ctx.runs.get(run_id)
        return _errors(404, f"no run {run_id}") if rec is None else rec.config

    @app.delete("/api/runs/{run_id}", tags=["runs"], status_code=204, responses=_R404)
    def delete_run(run_id: RunId) -> Response:
        """Forget a run and delete its directory (a running run is stopped first)."""
        if not ctx.runs.delete(run_id):
            return _errors(404, f"no run {run_id}")
        return Response(status_code=204)



def _stream_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.get(
        "/api/runs/{run_id}/events",
        tags=["runs"],
        responses={**_R404, 200: {"content": {"text/event-stream": {}}}},
        response_class=StreamingResponse,
    )
    def progress_stream(run_id: RunId) -> Response:
        """Server-sent events: ``progress`` (a RunInfo as JSON) on each change, then ``end``."""
        if ctx.runs.get(run_id) is None:
            return _errors(404, f"no run {run_id}")
        return StreamingResponse(
            _sse(ctx.runs, run_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


async def _sse(runs: RunManager, run_id: str, poll_s: float = 0.2) -> AsyncIterator[str]:
    last = ""
    idle = 0.0
    while True:
        rec = runs.get(run_id)
        if rec is None:
            yield "event: end\ndata: {\"status\": \"deleted\"}\n\n"
            return
        payload = json.dumps(rec.info(), sort_keys=True)
        if payload != last:
            yield f"event: progress\ndata: {payload}\n\n"
            last, idle = payload, 0.0
        if rec.status not in _PENDING:
            yield f"event: end\ndata: {payload}\n\n"
            return
        if idle >= 15.0:
            yield ": keep-alive\n\n"
            idle = 0.0
        await asyncio.sleep(poll_s)
        idle += poll_s


def _finished_dir(ctx: WebContext, run_id: str) -> Path | JSONResponse:
    rec = ctx.runs.get(run_id)
    if rec is None:
        return _errors(404, f"no run {run_id}")
    if rec.status != "done":
        return _errors(409, f"run {run_id} is {rec.status}; its results are not available")
    try:
        return run_path(ctx.root, run_id)
    except UnsafePathError:
        return _errors(404, f"no run {run_id}")


def _split(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns else None


def _data_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/api/runs/{run_id}/summary", tags=["results"], responses={**_R404, **_R409})
    def summary(run_id: RunId) -> Any:
        """summary.json of a finished run."""
        where = _finished_dir(ctx, run_id)
        if isinstance(where, JSONResponse):
            return where
        try:
            data = json.loads((where / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _errors(404, f"run {run_id} has no readable summary.json")
        return clean_json(data)

    @app.get("/api/runs/{run_id}/timeseries", tags=["results"], responses={**_R404, **_R409})
    def timeseries(run_id: RunId, columns: Columns = None) -> TableData:
        """timeseries.csv of a finished run, by column."""
        where = _finished_dir(ctx, run_id)
        if isinstance(where, JSONResponse):
            return where  # type: ignore[return-value]
        df = read_timeseries(where)
        if df is None:
            return _errors(404, f"run {run_id} has no timeseries.csv")  # type: ignore[return-value]
        return TableData.model_validate(frame_to_table(df, _split(columns)))

    @app.get("/api/runs/{run_id}/requests", tags=["results"], responses={**_R404, **_R409})
    def requests(run_id: RunId, columns: Columns = None) -> TableData:
        """requests.csv (or .parquet) of a finished run, by column."""
        where = _finished_dir(ctx, run_id)
        if isinstance(where, JSONResponse):
            return where  # type: ignore[return-value]
        df = read_requests(where)
        if df is None:
            return _errors(404, f"run {run_id} has no requests file")  # type: ignore[return-value]
        return TableData.model_validate(frame_to_table(df, _split(columns)))

    @app.get("/api/runs/{run_id}/event-log", tags=["results"], responses={**_R404, **_R409})
    def event_log(
        run_id: RunId,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Records of events.jsonl (written when the config sets ``outputs.events: true``)."""
        where = _finished_dir(ctx, run_id)
        if isinstance(where, JSONResponse):
            return where  # type: ignore[return-value]
        page = events_page(where, offset, limit)
        if page is None:
            return _errors(404, f"run {run_id} has no events.jsonl (outputs.events was off)")  # type: ignore[return-value]
        return page


def _upload_routes(app: FastAPI, ctx: WebContext) -> None:
    @app.post(
        "/api/traces",
        tags=["traces"],
        status_code=201,
        responses={**_R422, 413: {"model": ErrorBody, "description": "file too large"}},
    )
    def upload_trace(
        file: Annotated[UploadFile, File(description="trace file (jsonl, csv, txt, log)")],
        format: Annotated[str, Form(max_length=16)] = "auto",
    ) -> Any:
        """Store a trace under a server-made id; the id is what a config's workload.path names."""
        return store_upload(ctx.root, file, format, ctx.max_upload_bytes, ctx.caps)

    @app.get("/api/traces", tags=["traces"])
    def uploads() -> list[UploadInfo]:
        """Traces uploaded so far."""
        return [UploadInfo.model_validate(u) for u in list_uploads(ctx.root)]


def _static_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        path = _plotly_path()
        if path is None:
            return _errors(404, "plotly is not installed: pip install 'kvsim[web]'")
        return FileResponse(path, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _plotly_path() -> Path | None:
    """plotly.min.js inside the installed ``plotly`` package (never downloaded)."""
    spec = find_spec("plotly")
    if spec is None or spec.origin is None:
        return None
    path = Path(os.path.dirname(spec.origin)) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None
