"""The dashboard in a real browser: Playwright driving Debian's chromium (never downloaded).

Starts uvicorn on a free loopback port in a thread, picks the smoke preset, runs it, checks the
KPI cards against the API's summary, shows a validation error next to its field, adds GPU rows,
runs again and compares both runs. Screenshots go to the test's tmp_path (paths printed).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (.ci/run installs it with apt-get)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright python package (webtest extra) is missing"
)
uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="the web extra (httpx) is not installed")

from kvsim.web import create_app  # noqa: E402

# The KPI cards of static/plots.js, in order, with the factor between value and display.
KPI_FORMATS = {
    "completion_rate": 100.0,
    "throughput_tokens_per_sec": 1.0,
    "p50_ttft_ms": 1.0,
    "p99_ttft_ms": 1.0,
    "p50_tpot_ms": 1.0,
    "p99_tpot_ms": 1.0,
    "prefix_hit_ratio": 100.0,
    "preemptions": 1.0,
}

TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    app = create_app(tmp_path / "runs", max_workers=1)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page(server: str) -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.set_default_timeout(TIMEOUT_MS)
        yield pg
        browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


def _wait(pg: object, fn: str, arg: object = None) -> None:
    """Poll the JS function ``fn(arg)`` until truthy. (``wait_for_function`` evaluates its
    predicate with ``eval``, which the page's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not pg.evaluate(fn, arg):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {fn}")
        time.sleep(0.05)


def _shot(pg: object, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    print(f"screenshot: {path}")
    return path


def _number(text: str) -> float:
    m = re.search(r"-?[\d,]+(?:\.\d+)?", text)
    assert m, text
    return float(m.group(0).replace(",", ""))


def _run(pg: object, label: str, previous: str | None) -> str:
    """Click Run with ``label``; wait for a new run's results; return its id."""
    pg.fill("#run-label", label)  # type: ignore[attr-defined]
    pg.click("#run-button")  # type: ignore[attr-defined]
    _wait(
        pg,
        "prev => { const r = document.querySelector('#results');"
        " return r.dataset.ready === 'true' && r.dataset.runId && r.dataset.runId !== prev; }",
        previous or "",
    )
    for plot in ("plot-kv", "plot-queue", "plot-throughput", "plot-cdf"):
        pg.wait_for_selector(f"#{plot} .main-svg")  # type: ignore[attr-defined]
    return str(pg.get_attribute("#results", "data-run-id"))  # type: ignore[attr-defined]


def _check_kpis(pg: object, summary: dict) -> None:
    cards = pg.query_selector_all("#kpis .kpi")  # type: ignore[attr-defined]
    assert [c.get_attribute("data-testid") for c in cards] == [
        f"kpi-{key}" for key in KPI_FORMATS
    ]
    for card in cards:
        key = card.get_attribute("data-key")
        raw = card.get_attribute("data-value")
        scale = KPI_FORMATS[card.get_attribute("data-testid").removeprefix("kpi-")]
        if summary.get(key) is None:
            assert raw == ""
            continue
        assert float(raw) == summary[key], key  # the exact number the API returned
        shown = _number(card.query_selector(".kpi-value").inner_text())
        assert shown == pytest.approx(summary[key] * scale, rel=1e-3, abs=0.051), key


def _gpu_rows(summary: dict) -> int:
    return len(summary.get("per_gpu") or summary.get("per_instance") or [])


def test_dashboard_run_and_compare(page: object, server: str, tmp_path: Path) -> None:
    pg = page
    pg.goto(server + "/")  # type: ignore[attr-defined]
    pg.wait_for_selector("body[data-ready=true]")  # type: ignore[attr-defined]
    pg.select_option("#preset-select", "smoke")  # type: ignore[attr-defined]
    num = "[data-path='workload.num_requests']"
    _wait(pg, "s => document.querySelector(s).value === '200'", num)
    first = _run(pg, "smoke-1gpu", None)
    summary = httpx.get(f"{server}/api/runs/{first}/summary").json()
    assert summary["num_requests"] == 200
    _check_kpis(pg, summary)
    rows = pg.query_selector_all("[data-testid=per-gpu-row]")  # type: ignore[attr-defined]
    assert len(rows) == _gpu_rows(summary) == 1
    _shot(pg, tmp_path, "1-smoke-results")

    # a bad value is reported next to its field, then fixed
    pg.fill("[data-path='scheduler.block_size']", "0")  # type: ignore[attr-defined]
    pg.press("[data-path='scheduler.block_size']", "Tab")  # type: ignore[attr-defined]
    slot = "[data-error-for='scheduler.block_size']"
    _wait(pg, "s => document.querySelector(s).textContent.length > 0", slot)
    assert "greater than or equal to 1" in pg.inner_text(slot)  # type: ignore[attr-defined]
    _shot(pg, tmp_path, "2-validation-error")
    pg.fill("[data-path='scheduler.block_size']", "16")  # type: ignore[attr-defined]
    pg.press("[data-path='scheduler.block_size']", "Tab")  # type: ignore[attr-defined]
    _wait(pg, "s => document.querySelector(s).textContent === ''", slot)

    # two GPUs: per-GPU instance rows when the schema has them, else num_instances
    add = pg.query_selector("[data-testid='add-row-cluster.instances']")  # type: ignore[attr-defined]
    if add is not None:
        add.click()
        pg.click("[data-testid='add-row-cluster.instances']")  # type: ignore[attr-defined]
        pg.wait_for_selector("[data-row='cluster.instances[1]']")  # type: ignore[attr-defined]
    else:
        pg.fill("[data-path='cluster.num_instances']", "2")  # type: ignore[attr-defined]
        pg.press("[data-path='cluster.num_instances']", "Tab")  # type: ignore[attr-defined]
    _shot(pg, tmp_path, "3-two-gpu-rows")
    second = _run(pg, "smoke-2gpu", first)
    summary2 = httpx.get(f"{server}/api/runs/{second}/summary").json()
    _check_kpis(pg, summary2)
    rows = pg.query_selector_all("[data-testid=per-gpu-row]")  # type: ignore[attr-defined]
    assert len(rows) == _gpu_rows(summary2) == 2

    # compare both runs
    for rid in (first, second):
        pg.check(f".compare-check[data-run-id='{rid}']")  # type: ignore[attr-defined]
    pg.click("#compare-button")  # type: ignore[attr-defined]
    pg.wait_for_selector("#compare-view[data-ready=true]")  # type: ignore[attr-defined]
    for plot in ("compare-kv", "compare-throughput", "compare-queue", "compare-cdf"):
        pg.wait_for_selector(f"#{plot} .main-svg")  # type: ignore[attr-defined]
        traces = pg.evaluate(f"document.getElementById('{plot}').data.map(t => t.name)")  # type: ignore[attr-defined]
        assert sorted(traces) == ["smoke-1gpu", "smoke-2gpu"], plot
    header = pg.inner_text("#compare-table thead")  # type: ignore[attr-defined]
    assert "smoke-1gpu" in header and "smoke-2gpu" in header
    _shot(pg, tmp_path, "4-compare")

    # trace upload from the workload section: the server's id lands in workload.path
    pg.click("#tab-run")  # type: ignore[attr-defined]
    pg.select_option("[data-path='workload.kind']", "trace")  # type: ignore[attr-defined]
    pg.select_option("[data-path='workload.format']", "whitespace")  # type: ignore[attr-defined]
    trace = tmp_path / "tiny.txt"
    trace.write_text("".join(f"r{i} {50 * i} {32 + i} 4 0\n" for i in range(30)))
    pg.set_input_files("[data-upload-for='workload.path']", str(trace))  # type: ignore[attr-defined]
    path_input = "[data-path='workload.path']"
    _wait(pg, "s => document.querySelector(s).value.startsWith('trace-')", path_input)
    assert "(30 requests)" in pg.inner_text("#upload-status")  # type: ignore[attr-defined]
    _wait(pg, "() => document.querySelector('#validity').textContent === 'config valid'")
    _shot(pg, tmp_path, "5-trace-upload")
