"""Tests of kvsim.report.plots: files, PNG format, byte determinism, empty inputs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from kvsim.report.plots import PLOT_FILES, throughput_tokens_per_s, write_run_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIB = 1 << 30


def make_timeseries(num_rows: int = 60, num_instances: int = 2) -> pd.DataFrame:
    """A plausible sampled time series on a 100 ms grid (first sample at t = 100 ms)."""
    rng = np.random.default_rng(7)
    t_ms = np.arange(1, num_rows + 1) * 100.0
    cols: dict[str, np.ndarray] = {"time_ms": t_ms}
    total = np.zeros(num_rows, dtype=np.int64)
    for i in range(num_instances):
        used = (rng.integers(0, 40, num_rows).cumsum() % 60) * (GIB // 4)
        cols[f"kv_used_bytes_inst{i}"] = used
        cols[f"kv_capacity_bytes_inst{i}"] = np.full(num_rows, 16 * GIB, dtype=np.int64)
        total += used
    cols["kv_used_bytes"] = total
    cols["queue_depth"] = rng.integers(0, 20, num_rows)
    cols["active_prefill"] = rng.integers(0, 4, num_rows)
    cols["active_decode"] = rng.integers(0, 64, num_rows)
    cols["tokens_generated_delta"] = rng.integers(0, 500, num_rows)
    cols["finished_delta"] = rng.integers(0, 5, num_rows)
    cols["rejects_delta"] = np.zeros(num_rows, dtype=np.int64)
    cols["preemptions_delta"] = np.zeros(num_rows, dtype=np.int64)
    return pd.DataFrame(cols)


def make_requests(num: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    state = np.where(rng.random(num) < 0.8, "finished", "rejected")
    state[-5:] = "unfinished"
    ttft = rng.lognormal(4.0, 0.6, num)
    e2e = ttft + rng.lognormal(7.0, 0.4, num)
    finished = state == "finished"
    return pd.DataFrame(
        {
            "request_id": np.arange(num),
            "state": state,
            "ttft_ms": np.where(finished, ttft, np.nan),
            "e2e_latency_ms": np.where(finished, e2e, np.nan),
        }
    )


def _bytes_of(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


def test_writes_all_plots_as_png(tmp_path: Path) -> None:
    paths = write_run_plots(tmp_path, make_timeseries(), make_requests())
    assert [p.name for p in paths] == list(PLOT_FILES)
    assert all(p.parent == tmp_path / "plots" for p in paths)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), path.name
        assert len(data) > 5_000, path.name  # something was drawn
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(PLOT_FILES)


def test_png_bytes_identical_across_calls(tmp_path: Path) -> None:
    ts, req = make_timeseries(), make_requests()
    first = _bytes_of(write_run_plots(tmp_path / "a", ts, req))
    second = _bytes_of(write_run_plots(tmp_path / "b", ts.copy(), req.copy()))
    again = _bytes_of(write_run_plots(tmp_path / "a", ts, req))  # overwrite in place
    assert first == second == again


def test_png_has_no_software_metadata(tmp_path: Path) -> None:
    paths = write_run_plots(tmp_path, make_timeseries(), make_requests())
    for path in paths:
        assert b"matplotlib" not in path.read_bytes().lower()


def test_inputs_are_not_modified(tmp_path: Path) -> None:
    ts, req = make_timeseries().iloc[::-1], make_requests()
    ts_before, req_before = ts.copy(), req.copy()
    write_run_plots(tmp_path, ts, req)
    pd.testing.assert_frame_equal(ts, ts_before)
    pd.testing.assert_frame_equal(req, req_before)


def test_does_not_change_global_backend(tmp_path: Path) -> None:
    before = matplotlib.rcParams["backend"]
    write_run_plots(tmp_path, make_timeseries(), make_requests())
    assert matplotlib.rcParams["backend"] == before


@pytest.mark.parametrize(
    ("timeseries", "requests"),
    [
        pytest.param(make_timeseries().iloc[0:0], make_requests().iloc[0:0], id="zero-rows"),
        pytest.param(pd.DataFrame(), pd.DataFrame(), id="no-columns"),
        pytest.param(
            make_timeseries(num_rows=1),
            make_requests().assign(state="rejected"),
            id="one-sample-no-finished",
        ),
        pytest.param(
            make_timeseries()[["time_ms"]],
            make_requests().assign(ttft_ms=np.nan, e2e_latency_ms=np.nan),
            id="missing-columns-all-nan",
        ),
        pytest.param(
            make_timeseries().assign(time_ms=0.0),
            make_requests().drop(columns=["state"]).iloc[:1],
            id="zero-dt-single-request",
        ),
    ],
)
def test_empty_or_degenerate_inputs_do_not_crash(
    tmp_path: Path, timeseries: pd.DataFrame, requests: pd.DataFrame
) -> None:
    paths = write_run_plots(tmp_path, timeseries, requests)
    assert [p.name for p in paths] == list(PLOT_FILES)
    for path in paths:
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_empty_plots_are_deterministic(tmp_path: Path) -> None:
    a = _bytes_of(write_run_plots(tmp_path / "a", pd.DataFrame(), pd.DataFrame()))
    b = _bytes_of(write_run_plots(tmp_path / "b", pd.DataFrame(), pd.DataFrame()))
    assert a == b


@pytest.mark.parametrize("num_instances", [1, 40])
def test_single_and_many_instances(tmp_path: Path, num_instances: int) -> None:
    ts = make_timeseries(num_rows=30, num_instances=num_instances)
    paths = write_run_plots(tmp_path, ts, make_requests())
    assert paths[0].read_bytes().startswith(PNG_MAGIC)


def test_throughput_rate_from_grid() -> None:
    ts = pd.DataFrame(
        {"time_ms": [0.0, 500.0, 1000.0, 2000.0], "tokens_generated_delta": [0, 100, 50, 300]}
    )
    t, rate = throughput_tokens_per_s(ts)
    np.testing.assert_allclose(t, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(rate, [200.0, 100.0, 300.0])


def test_throughput_first_interval_starts_at_zero() -> None:
    ts = pd.DataFrame({"time_ms": [250.0, 500.0], "tokens_generated_delta": [10, 20]})
    t, rate = throughput_tokens_per_s(ts)
    np.testing.assert_allclose(t, [0.25, 0.5])
    np.testing.assert_allclose(rate, [40.0, 80.0])
