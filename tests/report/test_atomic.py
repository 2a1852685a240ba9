"""Tests of kvsim.report.atomic: atomic replace, strict JSON, stable CSV, JSONL streaming."""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvsim.errors import KvsimError
from kvsim.report import atomic
from kvsim.report.atomic import (
    JsonlStreamWriter,
    atomic_write_bytes,
    atomic_write_text,
    to_json_safe,
    write_dataframe,
    write_json,
)


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_text_creates_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "summary.txt"
    atomic_write_text(target, "a\nb\n")
    assert target.read_bytes() == b"a\nb\n"
    assert _names(tmp_path) == ["summary.txt"]


def test_atomic_write_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old content that is longer")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["x.bin"]


def test_atomic_write_text_is_utf8(tmp_path: Path) -> None:
    target = tmp_path / "u.txt"
    atomic_write_text(target, "µs → ok\n")
    assert target.read_bytes() == "µs → ok\n".encode()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_gets_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "requests.csv"
    target.write_text("old\n")

    def half_then_fail(self: pd.DataFrame, fh: object, **kwargs: object) -> None:
        fh.write("request_id\n1\n")  # type: ignore[attr-defined]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_dataframe(target, pd.DataFrame({"request_id": [1]}), "csv")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["requests.csv"]


def test_missing_directory_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")
    assert _names(tmp_path) == []


# --------------------------------------------------------------------------- JSON


def test_write_json_nan_inf_become_null_recursively(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    obj = {
        "b": float("nan"),
        "a": [1.5, float("inf"), {"deep": -math.inf}],
        "t": (np.float64("nan"), np.float32(0.5)),
        "n": np.int64(7),
        "ok": np.bool_(True),
        "arr": np.array([1.0, np.nan]),
    }
    write_json(target, obj)
    text = target.read_text()
    assert text == (
        "{\n"
        '  "b": null,\n'
        '  "a": [\n    1.5,\n    null,\n    {\n      "deep": null\n    }\n  ],\n'
        '  "t": [\n    null,\n    0.5\n  ],\n'
        '  "n": 7,\n'
        '  "ok": true,\n'
        '  "arr": [\n    1.0,\n    null\n  ]\n'
        "}\n"
    )
    assert list(json.loads(text)) == ["b", "a", "t", "n", "ok", "arr"]  # insertion order
    assert _names(tmp_path) == ["summary.json"]


def test_to_json_safe_types() -> None:
    class Color(Enum):
        RED = "red"

    out = to_json_safe(
        {np.int32(3): Color.RED, "p": Path("a/b"), "s": {3, 1, 2}, "na": pd.NA, "i": True}
    )
    assert out == {3: "red", "p": "a/b", "s": [1, 2, 3], "na": None, "i": True}
    assert type(to_json_safe(np.float32(0.25))) is float
    assert type(to_json_safe(np.uint8(4))) is int


def test_write_json_unserialisable_raises_and_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    target.write_text("{}\n")
    with pytest.raises(TypeError):
        write_json(target, {"x": object()})
    assert target.read_text() == "{}\n"
    assert _names(tmp_path) == ["s.json"]


def test_write_json_deterministic(tmp_path: Path) -> None:
    obj = {"x": 0.1 + 0.2, "y": [1, 2, 3], "z": {"k": np.float32(1 / 3)}}
    write_json(tmp_path / "a.json", obj)
    write_json(tmp_path / "b.json", obj)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


# --------------------------------------------------------------------------- DataFrames


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [0, 1, 2],
            "state": ["finished", "rejected", "finished"],
            "ttft_ms": [0.1 + 0.2, float("nan"), 1 / 3],
            "big": [123456789012.0, 1e-12, 2.5],
        }
    )


def test_write_dataframe_csv_exact_text(tmp_path: Path) -> None:
    target = tmp_path / "requests.csv"
    write_dataframe(target, _frame(), "csv")
    assert target.read_bytes() == (
        b"request_id,state,ttft_ms,big\n"
        b"0,finished,0.3,1.23456789e+11\n"
        b"1,rejected,,1e-12\n"
        b"2,finished,0.333333333,2.5\n"
    )
    assert _names(tmp_path) == ["requests.csv"]


def test_write_dataframe_csv_stable_across_calls(tmp_path: Path) -> None:
    write_dataframe(tmp_path / "a.csv", _frame())
    write_dataframe(tmp_path / "b.csv", _frame().copy())
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_write_dataframe_empty_csv(tmp_path: Path) -> None:
    target = tmp_path / "e.csv"
    write_dataframe(target, pd.DataFrame({"a": [], "b": []}), "csv")
    assert target.read_text() == "a,b\n"


def test_parquet_without_pyarrow_raises_kvsim_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic, "_have_pyarrow", lambda: False)
    with pytest.raises(KvsimError, match="parquet output needs pyarrow: pip install pyarrow"):
        write_dataframe(tmp_path / "r.parquet", _frame(), "parquet")
    assert _names(tmp_path) == []


def test_parquet_roundtrip_when_available(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    target = tmp_path / "r.parquet"
    write_dataframe(target, _frame(), "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(target), _frame())
    assert _names(tmp_path) == ["r.parquet"]


def test_unknown_format_raises(tmp_path: Path) -> None:
    with pytest.raises(KvsimError, match="'xlsx'"):
        write_dataframe(tmp_path / "r.xlsx", _frame(), "xlsx")  # type: ignore[arg-type]
    assert _names(tmp_path) == []


# --------------------------------------------------------------------------- JSON lines


def test_jsonl_clean_close_renames(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    with JsonlStreamWriter(target) as out:
        out.write({"t_ms": 1.5, "kind": "arrival", "req": 0})
        out.write({"t_ms": float("nan"), "kind": "finish", "extra": [1, None]})
        assert not target.exists()
        assert (tmp_path / "events.jsonl.part").exists()
    assert out.closed and out.num_records == 2
    assert target.read_bytes() == (
        b'{"t_ms":1.5,"kind":"arrival","req":0}\n{"t_ms":null,"kind":"finish","extra":[1,null]}\n'
    )
    assert _names(tmp_path) == ["events.jsonl"]


def test_jsonl_exception_inside_with_leaves_no_final_file(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    with pytest.raises(KeyboardInterrupt), JsonlStreamWriter(target) as out:
        out.write({"a": 1})
        raise KeyboardInterrupt
    assert not target.exists()
    assert out.closed
    # The partial stream stays, under a name that does not look whole.
    assert (tmp_path / "events.jsonl.part").read_text() == '{"a":1}\n'


def test_jsonl_interrupt_does_not_replace_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    target.write_text('{"old":true}\n')
    with pytest.raises(RuntimeError), JsonlStreamWriter(target) as out:
        out.write({"new": True})
        raise RuntimeError("boom")
    assert target.read_text() == '{"old":true}\n'


def test_jsonl_close_idempotent_and_write_after_close_fails(tmp_path: Path) -> None:
    out = JsonlStreamWriter(tmp_path / "e.jsonl")
    out.close()
    out.close()
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    with pytest.raises(ValueError, match="closed"):
        out.write({"a": 1})


def test_jsonl_rejects_unserialisable_record(tmp_path: Path) -> None:
    with pytest.raises(TypeError), JsonlStreamWriter(tmp_path / "e.jsonl") as out:
        out.write({"x": object()})
    assert not (tmp_path / "e.jsonl").exists()
