"""The public traces in /work/shared/data: the facts their README lists must be reproduced.

Skipped (with the path in the reason) when the shared data folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kvsim.config.workload import TraceWorkload
from kvsim.workload.request import Request
from kvsim.workload.stats import trace_stats
from kvsim.workload.traces import detect_format, load_trace

SHARED_DATA = (Path(__file__).parents[2] / ".." / "shared" / "data").resolve()


def load_real(relative: str, **kw: object) -> list[Request]:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"public trace not available: {path} (needs the shared data folder)")
    cfg = TraceWorkload.model_validate({"path": str(path), **kw})
    return load_trace(cfg, np.random.default_rng(0))


def test_mooncake_conversation_facts() -> None:
    reqs = load_real("mooncake/conversation_trace.jsonl")
    stats = trace_stats(reqs)
    assert stats["count"] == 12_031
    assert round(stats["duration_s"]) == 3_537
    assert round(stats["prompt_tokens_mean"]) == 12_035
    assert round(stats["output_tokens_mean"]) == 343
    assert stats["hash_block_size"] == 512
    assert all(r.block_hashes[0] == 0 for r in reqs)  # every request starts with block 0
    assert all(len(r.block_hashes) == r.prompt_tokens // 512 for r in reqs)
    # time stamps come in ~3 s buckets: up to 28 requests share one
    _, counts = np.unique([r.arrival_s for r in reqs], return_counts=True)
    assert counts.max() == 28
    assert 0.35 < stats["prefix_reuse_fraction"] < 0.42


def test_mooncake_synthetic_facts() -> None:
    reqs = load_real("mooncake/synthetic_trace.jsonl")
    stats = trace_stats(reqs)
    assert stats["count"] == 3_993
    assert round(stats["duration_s"]) == 1_022
    assert round(stats["prompt_tokens_mean"]) == 15_325
    assert round(stats["output_tokens_mean"]) == 149


def check_prefix_chained(reqs: list[Request]) -> None:
    parent: dict[int, tuple[int, int | None]] = {}
    for r in reqs:
        prev: int | None = None
        for i, h in enumerate(r.block_hashes):
            assert parent.setdefault(h, (i, prev)) == (i, prev)
            prev = h


@pytest.mark.parametrize("name", ["conversation_trace.jsonl", "synthetic_trace.jsonl"])
def test_mooncake_hashes_are_prefix_chained(name: str) -> None:
    check_prefix_chained(load_real(f"mooncake/{name}"))


@pytest.mark.parametrize(
    ("name", "count", "duration", "median_in", "median_out"),
    [
        ("AzureLLMInferenceTrace_code.csv", 8_819, 3_436, 1_469, 13),
        ("AzureLLMInferenceTrace_conv.csv", 19_366, 3_502, 1_020, 129),
    ],
)
def test_azure_facts(name: str, count: int, duration: int, median_in: int, median_out: int) -> None:
    reqs = load_real(f"azure/{name}")
    stats = trace_stats(reqs)
    assert stats["count"] == count
    assert round(stats["duration_s"]) == duration
    assert stats["prompt_tokens_p50"] == median_in
    assert stats["output_tokens_p50"] == median_out
    assert reqs[0].arrival_s == 0.0
    assert all(r.block_hashes == () and not r.synthetic_hashes for r in reqs)


@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("mooncake/conversation_trace.jsonl", "mooncake"),
        ("azure/AzureLLMInferenceTrace_code.csv", "azure"),
    ],
)
def test_detect_real_formats(relative: str, fmt: str) -> None:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"public trace not available: {path}")
    assert detect_format(path) == fmt


def test_limit_and_scale_on_real_trace() -> None:
    reqs = load_real("azure/AzureLLMInferenceTrace_conv.csv", limit=100, arrival_scale=0.5)
    full = load_real("azure/AzureLLMInferenceTrace_conv.csv")
    assert [r.request_id for r in reqs] == list(range(100))
    assert [r.arrival_s for r in reqs] == [r.arrival_s * 0.5 for r in full[:100]]


@pytest.mark.parametrize(
    ("name", "count", "median_in", "mean_in", "median_out", "mean_out"),
    [
        # the data README publishes the ShareGPT median input (1,730); the rest counted once
        ("sharegpt_8k_filtered_stats_llama2_tokenizer.csv", 30_731, 1_730, 2_340, 415, 439),
        (
            "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
            28_257,
            2_730,
            2_588,
            167,
            291,
        ),
    ],
)
def test_length_tables(
    name: str, count: int, median_in: int, mean_in: int, median_out: int, mean_out: int
) -> None:
    reqs = load_real(f"lengths/{name}", rate=5.0)
    stats = trace_stats(reqs)
    assert stats["count"] == count
    assert (stats["prompt_tokens_p50"], round(stats["prompt_tokens_mean"])) == (median_in, mean_in)
    assert (stats["output_tokens_p50"], round(stats["output_tokens_mean"])) == (
        median_out,
        mean_out,
    )
    assert detect_format(SHARED_DATA / "lengths" / name) == "lengths"
    # one synthetic stream per row: nothing shared, every full block hashed
    assert stats["prefix_reuse_fraction"] == 0.0
    assert all(r.synthetic_hashes and len(r.block_hashes) == r.prompt_tokens // 16 for r in reqs)
    # Poisson arrivals at 5/s: the mean gap is close to 0.2 s
    assert abs(stats["duration_s"] / (count - 1) - 0.2) < 0.01


def test_servegen_reasoning_client() -> None:
    path = SHARED_DATA / "servegen" / "reason__deepseek-r1__chunk-0-trace.csv"
    if not path.exists():
        pytest.skip(f"public trace not available: {path}")
    from kvsim.workload.traces import load_trace_with_report

    cfg = TraceWorkload(path=str(path))
    reqs, report = load_trace_with_report(cfg, np.random.default_rng(0))
    assert detect_format(path) == "servegen"
    assert report.details == {"clients": 1, "windows": 144, "windows_active": 26}
    # the windows' rates sum to 4,926 requests (sum of rate * 600 s); each window loses at
    # most its last arrival, which falls on the window's end
    assert 4_926 - 26 <= len(reqs) <= 4_926
    assert len(reqs) == 4_900  # with seed 0
    assert all(r.block_hashes == () for r in reqs)


def test_splitwise_alias_on_real_file() -> None:
    azure = load_real("azure/AzureLLMInferenceTrace_conv.csv")
    split = load_real("azure/AzureLLMInferenceTrace_conv.csv", format="splitwise")
    assert split == azure
