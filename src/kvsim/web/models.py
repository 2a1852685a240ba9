"""Request and response bodies of the dashboard's JSON API (they make up its OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Catalog",
    "ErrorBody",
    "FieldError",
    "PresetInfo",
    "RunInfo",
    "RunRequest",
    "RunStatus",
    "TableData",
    "UploadInfo",
    "ValidationResult",
]

RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    """One config problem. ``path`` is the dotted key path (``cluster.instances[1].gpu``)."""

    path: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx answer: ``detail`` is a one-line message; ``errors`` lists config problems."""

    detail: str
    errors: list[FieldError] = []


class PresetInfo(BaseModel):
    name: str
    description: str


class Catalog(BaseModel):
    """Built-in catalog entries, each with its fields and derived figures."""

    models: list[dict[str, Any]]
    gpus: list[dict[str, Any]]


class RunRequest(_Body):
    """Start (or validate) a run: ``config`` is merged over ``preset`` (if given).

    Paths inside ``config`` (``workload.path`` and any other ``*path``/``*file`` key) must be
    ids returned by ``POST /api/traces``; the server maps them to files it stored itself.
    """

    config: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = Field(None, max_length=64)
    label: str | None = Field(None, max_length=80)


class ValidationResult(BaseModel):
    valid: bool
    errors: list[FieldError]
    config: dict[str, Any] | None = Field(
        None, description="the normalised config (all defaults filled) when valid"
    )


class RunInfo(BaseModel):
    """A run's record. ``progress`` is arrivals simulated / total (0..1)."""

    id: str
    status: RunStatus
    label: str | None = None
    preset: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    progress: float = 0.0
    done: int = 0
    total: int = 0
    error: str | None = None
    notes: list[str] = []


class TableData(BaseModel):
    """A table in columnar form: ``data[column]`` is a list of ``num_rows`` values (NaN: null)."""

    columns: list[str]
    data: dict[str, list[Any]]
    num_rows: int


class UploadInfo(BaseModel):
    """A stored trace. Refer to it in a config as ``workload: {kind: trace, path: <id>}``."""

    id: str
    filename: str
    size_bytes: int
    num_requests: int | None = None
    error: str | None = None
