"""Config loading and errors, the study driver, its outputs and the vllm-fig2 preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvsim.errors import ConfigError
from kvsim.memory import list_memory_presets, load_memory_config, run_memory_study
from kvsim.report.memory_plots import MEMORY_PLOT_FILES

LENGTHS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lengths"
SHAREGPT = LENGTHS_DIR / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
SMALL = ["input.num_steps=300"]


def test_presets_are_listed_and_valid() -> None:
    names = [n for n, _ in list_memory_presets()]
    assert {"default", "vllm-fig2"} <= set(names)
    cfg = load_memory_config(preset="default")
    assert cfg.input.kind == "events"
    assert [a.label for a in cfg.allocators][-1] == "paged_fp8"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["allocators.0.kind=buddy"],
            "allocators[0].kind: unknown allocator 'buddy'; known: contiguous",
        ),
        (["input.num_steps=0"], "input.num_steps: "),
        (["bogus=1"], "bogus: unknown key"),
        (["input.lifetime_range=[5, 1]"], "input.lifetime_range: "),
        (["capacity_bytes=1000"], "capacity_tokens: set exactly one"),
        (["model=gpt-9"], "model: unknown model 'gpt-9'"),
        (["allocators.9.kind=paged"], "allocators.9: no list item 9"),
        (["allocators.1.kv_dtype=fp4"], "allocators[1].kv_dtype: "),
        (["input.kind=nope"], "input"),
        (["allocators=[{kind: paged}, {kind: paged}]"], "allocators: duplicate names ['paged']"),
    ],
)
def test_bad_config_names_the_key_path(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_memory_config(preset="default", overrides=overrides)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_quantisation_buys_slots_from_the_same_budget() -> None:
    cfg = load_memory_config(overrides=["capacity_tokens=1000"])
    assert [cfg.num_slots(d) for d in ("fp16", "fp8", "int8", "int4")] == [1000, 2000, 2000, 4000]
    cfg = load_memory_config(overrides=["capacity_bytes=524288000", "capacity_tokens=null"])
    assert cfg.bytes_per_slot("fp16") == 524288.0  # llama-2-7b: 32 layers x 2 x 4096 x 2 B
    assert cfg.num_slots("fp16") == 1000 and cfg.num_slots("int4") == 4000


def test_study_outputs_and_determinism(tmp_path: Path) -> None:
    cfg = load_memory_config(preset="default", overrides=SMALL)
    a = run_memory_study(cfg, tmp_path / "a")
    run_memory_study(cfg, tmp_path / "b")
    for name in (
        "results.csv",
        "summary.json",
        "results.txt",
        *(f"plots/{p}" for p in MEMORY_PLOT_FILES),
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(a.results) == 300 and a.results.columns[0] == "step"
    assert "paged_compressed_compressions" in a.results.columns
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    models = summary["models"]
    assert list(models) == [
        "monolithic",
        "contiguous",
        "max",
        "pow2",
        "paged",
        "paged_compressed",
        "paged_fp8",
    ]
    assert models["paged_fp8"]["num_slots"] == 2 * models["paged"]["num_slots"]
    for m in models.values():
        assert m["peak_reserved_slots"] <= m["num_slots"]
    assert models["monolithic"]["avg_external_frag_slots"] == 0.0


def test_lengths_input_from_a_small_generated_table(tmp_path: Path) -> None:
    table = tmp_path / "lengths.csv"
    table.write_text(
        "num_prefill_tokens,num_decode_tokens\n"
        + "".join(f"{p},{o}\n" for p, o in [(30, 20), (100, 60), (10, 5), (400, 400), (70, 10)])
    )
    overrides = [
        "input={kind: lengths, path: " + str(table) + ", num_requests: 40}",
        "max_len=256",
        "capacity_tokens=600",
        "allocators=[{kind: max}, {kind: oracle}, {kind: paged, block_size: 8}]",
    ]
    res = run_memory_study(load_memory_config(overrides=overrides))
    models = res.summary["models"]
    for m in models.values():
        assert m["finished"] == 40 and m["rejected"] == 0 and not m["truncated"]
    share = {k: m["share_token_states"] for k, m in models.items()}
    assert share["max"] < share["oracle"] < share["paged"]


@pytest.mark.skipif(not SHAREGPT.exists(), reason=f"length tables not found in {LENGTHS_DIR}")
def test_vllm_fig2_preset_orders_the_strategies() -> None:
    cfg = load_memory_config(
        preset="vllm-fig2", overrides=[f"input.path={SHAREGPT}", "input.num_requests=150"]
    )
    models = run_memory_study(cfg).summary["models"]
    assert list(models) == ["max", "pow2", "oracle", "paged"]
    share = [models[k]["share_token_states"] for k in models]
    running = [models[k]["avg_running"] for k in models]
    assert share == sorted(share) and share[-1] > 0.9
    assert running == sorted(running)
    assert all(m["finished"] == 150 for m in models.values())
