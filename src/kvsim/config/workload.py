"""Pydantic schema of the ``workload`` section (synthetic generator or trace file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ColumnMap",
    "LengthDist",
    "SessionSpec",
    "SharedPrefixSpec",
    "SyntheticWorkload",
    "TraceWorkload",
    "WorkloadConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LengthDist(_Strict):
    """A token-length distribution. Samples are rounded and clipped to ``[min, max]``.

    * ``fixed``: ``value``
    * ``uniform``: integers in ``[low, high]``
    * ``normal``: ``mean``, ``std``
    * ``lognormal``: ``mean`` (of the lengths, not of the log) and ``sigma`` (of the log)
    * ``zipf``: ``a`` > 1, scaled by ``value`` (length = value * zipf(a))
    * ``empirical``: draw from column ``column`` of CSV file ``path``
    """

    dist: Literal["fixed", "uniform", "normal", "lognormal", "zipf", "empirical"] = "fixed"
    value: int = Field(default=128, ge=1)
    low: int = Field(default=1, ge=1)
    high: int = Field(default=1024, ge=1)
    mean: float = Field(default=512.0, gt=0)
    std: float = Field(default=128.0, ge=0)
    sigma: float = Field(default=0.5, ge=0)
    a: float = Field(default=1.5, gt=1.0)
    path: str | None = None
    column: str | None = None
    min: int = Field(default=1, ge=1)
    max: int = Field(default=131072, ge=1)

    @model_validator(mode="after")
    def _check(self) -> LengthDist:
        if self.low > self.high:
            raise ValueError("low must be <= high")
        if self.min > self.max:
            raise ValueError("min must be <= max")
        if self.dist == "empirical" and (not self.path or not self.column):
            raise ValueError("dist 'empirical' needs 'path' (a CSV file) and 'column'")
        return self


class SharedPrefixSpec(_Strict):
    """System prompts shared between requests: ``num_prefixes`` distinct prefixes of
    ``tokens`` tokens; a request uses one (chosen uniformly) with probability ``fraction``."""

    num_prefixes: int = Field(default=4, ge=1)
    tokens: int = Field(default=512, ge=1)
    fraction: float = Field(default=1.0, ge=0.0, le=1.0)


class SessionSpec(_Strict):
    """Multi-turn sessions: each session has ``turns`` requests; turn k's prompt is the whole
    previous conversation (prompt + output of turn k-1) plus a new user message drawn from the
    prompt distribution, so consecutive turns share a prefix. Turns are ``think_time_s`` apart
    (exponential with that mean) after the previous turn's arrival."""

    turns: LengthDist = LengthDist(dist="uniform", low=1, high=4)
    think_time_s: float = Field(default=10.0, ge=0.0)


class SyntheticWorkload(_Strict):
    """Synthetic requests: arrivals at ``rate`` req/s (Poisson, or gamma with coefficient of
    variation ``cv``; ``cv`` = 1 is Poisson), lengths from the two distributions."""

    kind: Literal["synthetic"] = "synthetic"
    num_requests: int = Field(default=1000, ge=1)
    rate: float = Field(default=10.0, gt=0.0, description="requests per second")
    arrival: Literal["poisson", "gamma", "constant"] = "poisson"
    cv: float = Field(default=1.0, gt=0.0)
    prompt: LengthDist = LengthDist(dist="lognormal", mean=1024, sigma=0.8, max=8192)
    output: LengthDist = LengthDist(dist="lognormal", mean=256, sigma=0.8, max=2048)
    shared_prefix: SharedPrefixSpec | None = None
    sessions: SessionSpec | None = None
    hash_block_size: int = Field(default=16, ge=1, description="tokens per synthesised block hash")


class ColumnMap(_Strict):
    """Column (CSV header) or key (JSONL) names of a ``generic`` trace.

    ``prompt_tokens`` is required. Without ``arrival`` the requests arrive as a Poisson process
    at ``rate``; without ``output_tokens`` every request generates ``output_tokens`` tokens;
    ``session_id`` may hold any text (equal text = same session); ``hash_ids`` holds the
    prefix-chained ids of the prompt's full blocks of ``hash_block_size`` tokens (a JSON list,
    or in CSV also ids separated by spaces or semicolons).
    """

    arrival: str | None = None
    prompt_tokens: str
    output_tokens: str | None = None
    session_id: str | None = None
    hash_ids: str | None = None


class TraceWorkload(_Strict):
    """Requests read from a trace file (or, for ``agentic`` and ``servegen``, a directory).

    Formats (docs/traces.md has every field and rule): ``mooncake`` (JSONL), ``whitespace``
    (``id arrival_ms prompt gen streaming``), ``seqcsv`` (CSV ``sequence_id,
    sequence_length``), ``azure`` (Azure LLM inference 2023 CSV) and its alias ``splitwise``,
    ``burstgpt`` (BurstGPT CSV), ``agentic`` (kv-cache-tester JSON conversations),
    ``lengths`` (ShareGPT / arXiv length tables), ``servegen`` (ServeGen client windows,
    sampled), ``generic`` (CSV/JSONL with ``columns``); ``auto`` picks by extension and header.
    """

    kind: Literal["trace"] = "trace"
    path: str
    format: Literal[
        "auto",
        "mooncake",
        "whitespace",
        "seqcsv",
        "azure",
        "splitwise",
        "burstgpt",
        "agentic",
        "lengths",
        "servegen",
        "generic",
    ] = "auto"
    limit: int | None = Field(default=None, ge=1, description="keep the first N after sorting")
    arrival_scale: float = Field(
        default=1.0, gt=0.0, description="multiply arrival times (and so every gap); >1 slows down"
    )
    time_unit: Literal["s", "ms", "us"] | None = Field(
        default=None,
        description="unit of numeric time stamps; None = the format's own (mooncake and "
        "whitespace ms, others s)",
    )
    strict: bool = Field(
        default=True,
        description="true: a malformed row is an error; false: skip it and report it",
    )
    rate: float = Field(
        default=10.0,
        gt=0.0,
        description="req/s for formats without timestamps (seqcsv, lengths, generic without "
        "an arrival column)",
    )
    output_tokens: int = Field(
        default=128, ge=1, description="output length for formats without one (seqcsv, generic)"
    )
    hash_block_size: int = Field(
        default=16,
        ge=1,
        description="tokens per block of synthesised hashes and of generic hash_ids; formats "
        "with their own hashes keep theirs (mooncake 512, agentic 64)",
    )
    synthetic_hashes: Literal["auto", "all", "off"] = Field(
        default="auto",
        description="for token-count-only traces: auto = per-session (and per-row for "
        "seqcsv/lengths) synthetic hashes; all = also one stream per session-less request; "
        "off = none",
    )
    columns: ColumnMap | None = Field(default=None, description="column mapping (generic)")
    keep_failed: bool = Field(
        default=False,
        description="burstgpt: keep failed rows (0 response tokens) as 1-token outputs",
    )
    conversation_rate: float = Field(
        default=0.1,
        gt=0.0,
        description="agentic directory: conversations per second (staggered starts)",
    )
    conversation_arrival: Literal["poisson", "gamma", "constant"] = "poisson"
    conversation_cv: float = Field(default=1.0, gt=0.0)
    agentic_timing: Literal["trace", "think"] = Field(
        default="trace",
        description="agentic: trace = recorded `t`; think = previous arrival + turn "
        "duration + think_time",
    )
    turn_duration_s: float | None = Field(
        default=None,
        ge=0.0,
        description="agentic think timing: seconds per turn; None = the previous request's "
        "recorded api_time (0 if absent)",
    )


WorkloadConfig = SyntheticWorkload | TraceWorkload
