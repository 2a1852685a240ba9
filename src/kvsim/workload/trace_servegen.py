"""``servegen``: Alibaba ServeGen client data, *sampled* into requests (it is not a request trace).

A client is a pair of files, ``<name>-trace.csv`` and ``<name>-dataset.json``. The CSV has no
header; each line is one arrival window::

    window_start_s,rate_per_s,cv,pattern,shape,scale
    0,1.3316666666666668,8.598383725990791,Weibull,0.3753486140101707,0.3967677807107179
    600,0,0,,0,0

and the JSON maps a window start (seconds, as text) to length distributions, each a Python
dict literal ``"{tokens: probability, ...}"`` for ``input_tokens`` and ``output_tokens``
(``reason_ratio`` and multimodal fields are ignored). These semantics are those of
ServeGen's reference generator (``servegen/clientpool.py`` and ``construct.py``), which we
follow at the client's own recorded rate:

* a window lasts until the next window's start (the last one as long as the one before it,
  600 s in the released data); a window with an empty pattern or rate 0 has no requests;
* it gets ``n = ceil(rate * length)`` inter-arrival gaps drawn from the pattern (``Gamma``:
  shape/scale; ``Weibull``: shape/scale), rescaled so that they sum to the window length;
  arrivals are ``start + cumsum(gaps)`` strictly inside the window;
* lengths come from the dataset window with the largest start <= the window's start
  (windows with none are skipped and counted in ``details.windows_without_dataset``), drawn
  by inverse CDF, input and output *independently* (the reference code reuses one uniform
  draw for both, making them perfectly rank-correlated; we do not copy that); 0 is raised
  to 1 (``details.lengths_raised_to_1``).

A path may be one ``*-trace.csv`` file or a directory: every ``*-trace.csv`` in it (sorted by
name) is one client, and their requests are merged. There are no hashes and no sessions.
All randomness comes from the run's generator.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kvsim.errors import TraceError
from kvsim.workload.trace_common import TraceLoader, TraceRecords, open_text, register_trace_format
from kvsim.workload.trace_report import LoadContext

__all__ = ["ServeGenLoader"]

_PATTERNS = ("Gamma", "Weibull")
_FIELDS = ("window_start_s", "rate_per_s", "cv", "pattern", "shape", "scale")


@dataclass(slots=True)
class _Window:
    start: float
    rate: float
    pattern: str
    shape: float
    scale: float


@register_trace_format("servegen")
class ServeGenLoader(TraceLoader):
    """ServeGen client windows and length distributions, sampled with the run's generator."""

    sniff_priority = 70

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        cells = line.split(",")
        return (
            len(cells) == 6
            and cells[3].strip() in ("", *_PATTERNS)
            and path.name.endswith("-trace.csv")
        )

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.name.endswith("-trace.csv"))
            if not files:
                raise TraceError(
                    str(path), None, None, "no *-trace.csv client files in the directory"
                )
        else:
            files = [path]
        ctx.units_per_second(None, "servegen")  # windows are seconds: reject time_unit
        records = TraceRecords(file=str(path))
        for file in files:
            windows = _read_windows(file, ctx)
            dataset = _read_dataset(_dataset_path(file))
            ctx.report.files_read += 1
            ctx.report.count("clients")
            _sample_client(windows, dataset, ctx, records)
        return records


def _dataset_path(trace: Path) -> Path:
    if not trace.name.endswith("-trace.csv"):
        raise TraceError(str(trace), None, None, "a ServeGen client file is named <name>-trace.csv")
    return trace.with_name(trace.name[: -len("-trace.csv")] + "-dataset.json")


def _read_windows(file: Path, ctx: LoadContext) -> list[_Window]:
    name = str(file)
    windows: list[_Window] = []
    with open_text(file) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            ctx.report.rows_read += 1
            try:
                windows.append(_parse_window(line, name, line_no))
                if len(windows) > 1 and windows[-1].start <= windows[-2].start:
                    windows.pop()
                    raise TraceError(name, line_no, "window_start_s", "must increase line by line")
            except TraceError as err:
                ctx.skip(err)
    return windows


def _parse_window(line: str, name: str, line_no: int) -> _Window:
    cells = [c.strip() for c in line.split(",")]
    if len(cells) != len(_FIELDS):
        raise TraceError(
            name, line_no, None, f"expected {len(_FIELDS)} fields {_FIELDS}, got {len(cells)}"
        )
    values: list[float] = []
    for i in (0, 1, 2, 4, 5):
        try:
            value = float(cells[i])
        except ValueError:
            raise TraceError(
                name, line_no, _FIELDS[i], f"expected a number, got {cells[i]!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise TraceError(
                name, line_no, _FIELDS[i], f"must be a finite number >= 0, got {cells[i]!r}"
            )
        values.append(value)
    pattern = cells[3]
    if pattern not in ("", *_PATTERNS):
        raise TraceError(
            name, line_no, "pattern", f"expected Gamma, Weibull or empty, got {pattern!r}"
        )
    start, rate, _, shape, scale_param = values
    if pattern and rate > 0 and (shape <= 0 or scale_param <= 0):
        raise TraceError(name, line_no, "shape", "shape and scale must be > 0 for an active window")
    return _Window(start, rate, pattern, shape, scale_param)


def _read_dataset(file: Path) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(start, in_values, in_cdf, out_values, out_cdf)`` per usable dataset window, sorted."""
    name = str(file)
    try:
        with open_text(file) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise TraceError(name, exc.lineno, None, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise TraceError(name, None, None, "expected a JSON object {window_start: {...}}")
    out = []
    for key, fields in data.items():
        try:
            start = float(key)
        except ValueError:
            raise TraceError(name, None, key, "window keys must be numbers (seconds)") from None
        if not isinstance(fields, dict):
            raise TraceError(name, None, key, "expected an object of distributions")
        dists = [_pmf(fields.get(f), name, f"{key}.{f}") for f in ("input_tokens", "output_tokens")]
        if any(d is None for d in dists):
            continue  # an empty distribution: the reference skips the window too
        (iv, ic), (ov, oc) = dists  # type: ignore[misc]
        out.append((start, iv, ic, ov, oc))
    out.sort(key=lambda item: item[0])
    return out


def _pmf(text: object, name: str, where: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted values and normalised CDF of a ``"{value: prob}"`` literal (None if empty)."""
    if not isinstance(text, str):
        raise TraceError(name, None, where, "missing (expected a '{tokens: probability}' string)")
    try:
        pmf = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise TraceError(name, None, where, "not a '{tokens: probability}' literal") from None
    if not isinstance(pmf, dict):
        raise TraceError(name, None, where, "not a '{tokens: probability}' literal")
    if not pmf:
        return None
    values = np.asarray(sorted(pmf), dtype=np.float64)
    probs = np.asarray([pmf[v] for v in sorted(pmf)], dtype=np.float64)
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.sum() <= 0:
        raise TraceError(name, None, where, "probabilities must be finite, >= 0, not all 0")
    return values, np.cumsum(probs) / probs.sum()


def _sample_client(
    windows: list[_Window],
    dataset: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    ctx: LoadContext,
    records: TraceRecords,
) -> None:
    rng = ctx.rng
    starts = [d[0] for d in dataset]
    for k, win in enumerate(windows):
        ctx.report.count("windows")
        if not win.pattern or win.rate <= 0:
            continue
        if k + 1 < len(windows):
            length = windows[k + 1].start - win.start
        else:
            length = win.start - windows[k - 1].start if k > 0 else 600.0
        idx = int(np.searchsorted(starts, win.start, side="right")) - 1
        if idx < 0:
            ctx.report.count("windows_without_dataset")
            continue
        num = math.ceil(win.rate * length)
        if win.pattern == "Gamma":
            gaps = rng.gamma(win.shape, win.scale, size=num)
        else:
            gaps = rng.weibull(win.shape, size=num) * win.scale
        total = float(gaps.sum())
        if total > 0:
            gaps *= length / total
        times = win.start + np.cumsum(gaps)
        times = times[times < win.start + length]
        _, iv, ic, ov, oc = dataset[idx]
        prompts = _draw(iv, ic, len(times), rng)
        outputs = _draw(ov, oc, len(times), rng)
        raised = int((prompts < 1).sum() + (outputs < 1).sum())
        if raised:
            ctx.report.count("lengths_raised_to_1", raised)
        ctx.report.count("windows_active")
        records.arrival_s.extend(times.tolist())
        records.prompt_tokens.extend(np.maximum(prompts, 1).tolist())
        records.output_tokens.extend(np.maximum(outputs, 1).tolist())


def _draw(values: np.ndarray, cdf: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` draws by inverse CDF, as int64 token counts."""
    idx = np.minimum(np.searchsorted(cdf, rng.random(num)), len(values) - 1)
    return np.rint(values[idx]).astype(np.int64)
