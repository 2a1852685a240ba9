"""A sweep killed with SIGKILL at any moment and rerun ends with every point exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
from sweep_helpers import kvsim_cmd, subprocess_env, write_spec

from kvsim.sweep import expand, load_sweep_spec
from kvsim.sweep.store import MARKER

RUN_FILES = {
    "summary.json",
    "summary_flat.csv",
    "requests.csv",
    "timeseries.csv",
    "run_meta.json",
    MARKER,
}


def _finished_dirs(points: Path) -> list[Path]:
    if not points.is_dir():
        return []
    return [p for p in points.iterdir() if not p.name.startswith(".")]


def _start(spec: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        kvsim_cmd("sweep", str(spec), "--out", str(out), "--workers", "1", "-q"),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], points: Path, num_dirs: int, extra_s: float) -> None:
    deadline = time.monotonic() + 120
    while len(_finished_dirs(points)) < num_dirs and proc.poll() is None:
        assert time.monotonic() < deadline, "sweep made no progress"
        time.sleep(0.005)
    time.sleep(extra_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _check_complete(spec_path: Path, out: Path) -> None:
    spec, d = load_sweep_spec(spec_path)
    keys = [p.key for p in expand(spec, d)]
    df = pd.read_csv(out / "results.csv")
    assert list(df["point"]) == list(range(len(keys)))
    assert list(df["key"]) == keys  # every point exactly once, in order
    assert (df["status"] == "ok").all()
    assert pd.read_parquet(out / "results.parquet")["key"].tolist() == keys
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(keys)
    for key in keys:
        d = out / "points" / key
        assert {p.name for p in d.iterdir() if p.is_file()} >= RUN_FILES
        marker = json.loads((d / MARKER).read_text())
        assert marker["key"] == key and marker["status"] == "ok"
        json.loads((d / "summary.json").read_text())  # whole, parseable
        json.loads((d / "run_meta.json").read_text())
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]


def test_sigkill_midway_then_rerun_completes_without_duplicates_or_losses(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path / "s.yaml",
        {
            "base": "smoke",
            "set": {"workload.num_requests": 150},
            "grid": {"workload.rate": [5.0, 10.0, 20.0, 40.0, 60.0, 80.0]},
        },
    )
    out = tmp_path / "out"
    killed: list[int] = []
    # Kill right after the first point directory appears, then at two odd moments.
    for num_dirs, extra_s in ((1, 0.0), (2, 0.05), (4, 0.013)):
        proc = _start(spec, out)
        _kill_when(proc, out / "points", num_dirs, extra_s)
        assert proc.returncode == -signal.SIGKILL
        killed.append(proc.pid)
        # Whatever the moment, the table on disk is whole and holds distinct finished points.
        if (out / "results.csv").exists():
            df = pd.read_csv(out / "results.csv")
            assert df["key"].is_unique
    proc = _start(spec, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    _check_complete(spec, out)
    # The private scratch dirs of the killed (in-process) workers were cleaned up too.
    for root in {Path("/dev/shm"), Path(tempfile.gettempdir())}:
        stale = [p for p in root.glob("kvsim-point-*") if int(p.name.split("-")[2]) in killed]
        assert not stale
