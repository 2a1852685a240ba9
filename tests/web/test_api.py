"""The dashboard's JSON API through FastAPI's TestClient: catalog, validation, run lifecycle,
limits (429, 422, 413), uploads, path traversal, delete, restart, CORS and headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("multipart", reason="the web extra (python-multipart) is not installed")

from fastapi.testclient import TestClient
from web_helpers import GatedRunner, wait_for

from kvsim.api import simulate
from kvsim.config.loader import validate_config
from kvsim.errors import ConfigError
from kvsim.web import create_app
from kvsim.web.store import RUN_ID_RE

MakeClient = Callable[..., TestClient]


def _trace_text(n: int) -> str:
    """A whitespace-format trace: ``n`` requests 100 ms apart, prompt 64+i, 8 output tokens."""
    return "".join(f"r{i} {100 * i} {64 + i} 8 0\n" for i in range(n))


def _run_smoke(client: TestClient, **body: object) -> dict:
    res = client.post("/api/runs", json={"preset": "smoke", **body})
    assert res.status_code == 201, res.text
    return res.json()


# ----------------------------------------------------------------------------- meta


def test_presets_catalog_schema(make_client: MakeClient) -> None:
    c = make_client()
    names = [p["name"] for p in c.get("/api/presets").json()]
    assert "smoke" in names and names == sorted(names)
    smoke = c.get("/api/presets/smoke").json()
    assert smoke["workload"]["num_requests"] == 200
    assert smoke["model"] == "llama-3-8b"
    assert c.get("/api/presets/no-such-preset").status_code == 404
    catalog = c.get("/api/catalog").json()
    from kvsim.config.catalog import gpu_catalog, model_catalog

    assert [m["id"] for m in catalog["models"]] == list(model_catalog())
    assert [g["id"] for g in catalog["gpus"]] == list(gpu_catalog())
    assert {"llama-3-8b", "deepseek-v3"} <= set(model_catalog()) and "h100" in gpu_catalog()
    llama = next(m for m in catalog["models"] if m["id"] == "llama-3-8b")
    assert llama["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 2  # 131072 B/token (GQA, bf16)
    schema = c.get("/api/schema").json()
    assert {"seed", "model", "gpu", "cluster", "scheduler", "workload"} <= set(schema["properties"])
    choices = c.get("/api/choices").json()
    assert choices and all(names == sorted(names) for names in choices.values())
    if "cluster.router" in choices:
        from kvsim.serving.routing import router_names

        assert choices["cluster.router"] == router_names()
    spec = c.get("/openapi.json").json()
    assert "/api/runs/{run_id}/events" in spec["paths"]


def test_validate_reports_key_paths(make_client: MakeClient) -> None:
    c = make_client()

    def errors(config: dict) -> list[dict]:
        body = c.post("/api/validate", json={"preset": "smoke", "config": config}).json()
        assert body["valid"] is False and body["config"] is None
        return body["errors"]

    err = errors({"scheduler": {"block_size": 0}})
    assert err[0]["path"] == "scheduler.block_size"
    assert "greater than or equal to 1" in err[0]["message"]
    err = errors({"scheduler": {"blok_size": 16}})
    assert err[0]["path"] == "scheduler.blok_size"
    assert "did you mean 'block_size'" in err[0]["message"]
    err = errors({"scheduler": {"admission": "eager"}})
    assert err[0]["path"] == "scheduler.admission" and "'lazy'" in err[0]["message"]
    err = errors({"model": "gpt-9"})
    assert err[0]["path"] == "model" and "unknown model 'gpt-9'" in err[0]["message"]
    ok = c.post("/api/validate", json={"preset": "smoke"}).json()
    assert ok["valid"] is True and ok["errors"] == []
    assert ok["config"]["workload"]["num_requests"] == 200
    assert ok["config"]["limits"]["max_sim_time_s"] == 3600.0  # the server cap filled in
    res = c.post("/api/validate", json={"config": [], "bogus": 1})
    assert res.status_code == 422 and res.json()["errors"]


# ----------------------------------------------------------------------------- lifecycle


def test_run_lifecycle_matches_direct_simulation(make_client: MakeClient, tmp_path: Path) -> None:
    c = make_client()
    info = _run_smoke(c, label="first")
    rid = info["id"]
    assert RUN_ID_RE.fullmatch(rid) and info["status"] in ("queued", "running")
    assert info["label"] == "first" and info["preset"] == "smoke"
    with c.stream("GET", f"/api/runs/{rid}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in stream.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event:")]
    assert events[-1] == "end" and "progress" in events
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["status"] == "done" and last["progress"] == 1.0
    info = c.get(f"/api/runs/{rid}").json()
    assert (info["status"], info["done"], info["total"]) == ("done", 200, 200)
    run_dir = tmp_path / "runs" / rid
    for name in ("summary.json", "timeseries.csv", "requests.csv", "run_meta.json", "web.json"):
        assert (run_dir / name).is_file(), name
    # differential: the same validated config simulated directly gives the same numbers
    config = c.get(f"/api/runs/{rid}/config").json()
    direct = simulate(validate_config(config), plots=False)
    assert c.get(f"/api/runs/{rid}/summary").json() == json.loads(
        json.dumps(direct.summary)
    )
    ts = c.get(f"/api/runs/{rid}/timeseries").json()
    assert ts["columns"] == list(direct.timeseries.columns)
    assert ts["num_rows"] == len(direct.timeseries)
    assert ts["data"]["time_ms"] == direct.timeseries["time_ms"].tolist()
    reqs = c.get(f"/api/runs/{rid}/requests", params={"columns": "request_id,state,nope"}).json()
    assert reqs["columns"] == ["request_id", "state"] and reqs["num_rows"] == 200
    assert reqs["data"]["request_id"] == list(range(200))
    assert c.get(f"/api/runs/{rid}/event-log").status_code == 404  # outputs.events was off
    assert [r["id"] for r in c.get("/api/runs").json()] == [rid]


def test_event_log_and_failed_run(make_client: MakeClient) -> None:
    c = make_client()
    rid = _run_smoke(c, config={"outputs": {"events": True}, "workload": {"num_requests": 5}})["id"]
    assert wait_for(c, rid)["status"] == "done"
    page = c.get(f"/api/runs/{rid}/event-log", params={"offset": 0, "limit": 3}).json()
    assert len(page) == 3 and all("event" in r and "time_ms" in r for r in page)
    assert page[0]["event"] == "arrival"


def test_runs_survive_a_restart(make_client: MakeClient, tmp_path: Path) -> None:
    runs = tmp_path / "shared-runs"
    c1 = make_client(runs)
    rid = _run_smoke(c1)["id"]
    assert wait_for(c1, rid)["status"] == "done"
    summary = c1.get(f"/api/runs/{rid}/summary").json()
    # a run a stopped server left behind 'running' comes back failed
    stale = runs / "run-0123456789ab"
    stale.mkdir()
    record = {"id": stale.name, "status": "running", "created_at": "x", "config": {}}
    (stale / "web.json").write_text(json.dumps(record))
    c2 = make_client(runs)
    listed = {r["id"]: r for r in c2.get("/api/runs").json()}
    assert listed[rid]["status"] == "done"
    assert listed[stale.name]["status"] == "failed"
    assert listed[stale.name]["error"] == "interrupted by a server restart"
    assert c2.get(f"/api/runs/{rid}/summary").json() == summary


# ----------------------------------------------------------------------------- limits


def test_queue_limit_gives_429(make_client: MakeClient) -> None:
    runner = GatedRunner()
    c = make_client(max_workers=1, max_queued=1, runner=runner)
    first = _run_smoke(c)["id"]
    second = _run_smoke(c)["id"]
    res = c.post("/api/runs", json={"preset": "smoke"})
    assert res.status_code == 429
    assert "limit: 1 running + 1 queued" in res.json()["detail"]
    assert c.get(f"/api/runs/{second}").json()["status"] == "queued"
    assert c.get(f"/api/runs/{second}/summary").status_code == 409
    runner.release()
    assert wait_for(c, first)["status"] == "done"
    assert wait_for(c, second)["status"] == "done"
    assert c.post("/api/runs", json={"preset": "smoke"}).status_code == 201


def test_caps_give_422_naming_the_limit(make_client: MakeClient) -> None:
    c = make_client(max_requests_per_run=100, max_sim_time_s=10.0, runner=GatedRunner())
    res = c.post("/api/runs", json={"preset": "smoke"})
    assert res.status_code == 422
    body = res.json()
    assert body["errors"][0]["path"] == "workload.num_requests"
    assert "max_requests_per_run=100" in body["detail"]
    small = {"workload": {"num_requests": 100}}
    res = c.post("/api/runs", json={"preset": "smoke", "config": {**small, "limits": {
        "max_sim_time_s": 20}}})
    assert res.status_code == 422
    assert res.json()["errors"][0]["path"] == "limits.max_sim_time_s"
    assert "max_sim_time_s=10" in res.json()["detail"]
    ok = _run_smoke(c, config=small)
    assert c.get(f"/api/runs/{ok['id']}/config").json()["limits"]["max_sim_time_s"] == 10.0
    assert ok["notes"] == ["simulated time capped at max_sim_time_s=10 s"]


def test_upload_limit_gives_413_and_leaves_nothing(make_client: MakeClient, tmp_path: Path) -> None:
    c = make_client(max_upload_bytes=1000)
    big = _trace_text(100).encode()
    assert len(big) > 1000
    res = c.post("/api/traces", files={"file": ("big.txt", big)})
    assert res.status_code == 413
    uploads = tmp_path / "runs" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


# ----------------------------------------------------------------------------- uploads


def test_uploaded_trace_runs_by_id(make_client: MakeClient, tmp_path: Path) -> None:
    c = make_client()
    res = c.post(
        "/api/traces",
        files={"file": ("../../evil name.txt", _trace_text(30).encode())},
        data={"format": "whitespace"},
    )
    assert res.status_code == 201, res.text
    up = res.json()
    assert up["id"].startswith("trace-") and up["id"].endswith(".txt")
    assert (up["filename"], up["num_requests"]) == ("evil name.txt", 30)
    stored = tmp_path / "runs" / "uploads" / up["id"]
    assert stored.read_text() == _trace_text(30)
    assert [u["id"] for u in c.get("/api/traces").json()] == [up["id"]]
    workload = {"kind": "trace", "path": up["id"], "format": "whitespace"}
    rid = _run_smoke(c, config={"workload": workload})["id"]
    info = wait_for(c, rid)
    assert info["status"] == "done", info
    assert c.get(f"/api/runs/{rid}/summary").json()["num_requests"] == 30
    bad = c.post("/api/traces", files={"file": ("x.txt", b"r0 zero 1 1 0\n")},
                 data={"format": "whitespace"})
    assert bad.status_code == 422 and str(tmp_path) not in bad.json()["detail"]
    assert len(list((tmp_path / "runs" / "uploads").glob("trace-*.txt"))) == 1


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"workload": {"kind": "trace", "path": "/etc/passwd"}}, "workload.path"),
        ({"workload": {"kind": "trace", "path": "../uploads/trace-0.txt"}}, "workload.path"),
        ({"workload": {"kind": "trace", "path": "trace-0123456789ab.txt"}}, "workload.path"),
        ({"catalog_files": ["/etc/passwd"]}, "catalog_files[0]"),
        ({"workload": {"prompt": {"dist": "empirical", "path": "/etc/passwd", "column": "x"}}},
         "workload.prompt.path"),
    ],
)
def test_client_paths_are_refused(make_client: MakeClient, config: dict, path: str) -> None:
    c = make_client(runner=GatedRunner())
    res = c.post("/api/runs", json={"preset": "smoke", "config": config})
    assert res.status_code == 422
    assert res.json()["errors"][0]["path"] == path
    assert c.get("/api/runs").json() == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs/../../etc/passwd",
        "/api/runs/..%2F..%2Fetc%2Fpasswd",
        "/api/runs/%2e%2e",
        "/api/runs/%2e%2e/summary",
        "/api/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/timeseries",
        "/api/runs/run-0123456789ab/../../../etc/passwd",
        "/api/presets/..%2F..%2Fetc%2Fpasswd",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_path_traversal_refused(make_client: MakeClient, url: str) -> None:
    c = make_client()
    res = c.get(url)
    assert res.status_code in (404, 422), (url, res.status_code)
    assert "root:" not in res.text
    assert c.delete(url).status_code in (404, 405, 422)


def test_symlinked_run_dir_is_not_served(make_client: MakeClient, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "summary.json").write_text('{"secret": 1}')
    record = {"id": "run-aaaaaaaaaaaa", "status": "done", "created_at": "x", "config": {}}
    (outside / "web.json").write_text(json.dumps(record))
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "run-aaaaaaaaaaaa").symlink_to(outside, target_is_directory=True)
    c = make_client(runs)
    assert c.get("/api/runs/run-aaaaaaaaaaaa/summary").status_code == 404
    assert c.get("/api/runs").json() == []


# ----------------------------------------------------------------------------- delete


def test_delete_finished_and_running_runs(make_client: MakeClient, tmp_path: Path) -> None:
    c = make_client()
    rid = _run_smoke(c)["id"]
    assert wait_for(c, rid)["status"] == "done"
    assert c.delete(f"/api/runs/{rid}").status_code == 204
    assert not (tmp_path / "runs" / rid).exists()
    assert c.get(f"/api/runs/{rid}").status_code == 404
    assert c.delete(f"/api/runs/{rid}").status_code == 404
    runner = GatedRunner()
    c2 = make_client(tmp_path / "runs2", runner=runner)
    rid2 = _run_smoke(c2)["id"]
    while not runner.started:
        pass
    assert c2.delete(f"/api/runs/{rid2}").status_code == 204
    assert c2.get("/api/runs").json() == []
    c2.app.state.runs.shutdown()  # type: ignore[attr-defined]
    assert not (tmp_path / "runs2" / rid2).exists()


# ----------------------------------------------------------------------------- security


def test_no_cors_by_default_and_exact_origins_when_asked(make_client: MakeClient) -> None:
    origin = {"Origin": "http://evil.example"}
    res = make_client().get("/api/presets", headers=origin)
    assert "access-control-allow-origin" not in res.headers
    c = make_client(cors_origins=("http://lab.example",))
    ok = c.get("/api/presets", headers={"Origin": "http://lab.example"})
    assert ok.headers["access-control-allow-origin"] == "http://lab.example"
    assert "access-control-allow-origin" not in c.get("/api/presets", headers=origin).headers
    with pytest.raises(ConfigError, match="wildcard"):
        create_app(Path("unused"), cors_origins=("*",))


def test_page_static_files_and_headers(make_client: MakeClient) -> None:
    c = make_client(allowed_hosts=["testserver"])
    page = c.get("/")
    assert page.status_code == 200 and 'id="run-button"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    js = c.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    for name in ("app.js", "form.js", "plots.js", "app.css"):
        assert c.get(f"/static/{name}").status_code == 200
    assert c.get("/api/presets", headers={"Host": "evil.example"}).status_code == 400
