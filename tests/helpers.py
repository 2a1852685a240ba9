"""Factories for tests: a toy model/GPU with round numbers, requests, configs and runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.schema import SimConfig
from kvsim.serving.cluster import RunOutput, ServingSimulation
from kvsim.workload.request import Request

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Toy numbers chosen so step times are easy to write down by hand:
#   weight_bytes = 2e9, kv_bytes_per_token = 2 layers * 2 * 1 head * 64 * 2 B = 512,
#   q_dim = 64, HBM 1e12 B/s, 1e14 FLOP/s, efficiencies 1, overhead 0.
TOY_MODEL = ModelSpec(
    name="toy",
    num_layers=2,
    hidden_size=64,
    num_attention_heads=1,
    num_kv_heads=1,
    head_dim=64,
    num_params=1e9,
    dtype_bytes=2,
    max_model_len=1 << 20,
)
TOY_GPU = GPUSpec(
    name="toy-gpu",
    hbm_bytes=80e9,
    hbm_bandwidth_bytes_per_s=1e12,
    bf16_flops=1e14,
    pcie_bandwidth_bytes_per_s=1e10,
)


def toy_config(**sections: Any) -> SimConfig:
    """A SimConfig on the toy model/GPU with unit efficiencies and no overhead."""
    data: dict[str, Any] = {
        "model": TOY_MODEL.model_dump(),
        "gpu": TOY_GPU.model_dump(),
        "perf": {"compute_efficiency": 1.0, "memory_efficiency": 1.0, "iteration_overhead_ms": 0.0},
        "outputs": {"plots": False},
    }
    for key, val in sections.items():
        if isinstance(val, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **val}
        else:
            data[key] = val
    return SimConfig.model_validate(data)


def make_request(
    rid: int,
    arrival_s: float,
    prompt: int,
    output: int,
    hashes: Sequence[int] = (),
    hash_block_size: int = 16,
    session: int = -1,
) -> Request:
    return Request(
        request_id=rid,
        arrival_s=arrival_s,
        prompt_tokens=prompt,
        output_tokens=output,
        session_id=session,
        block_hashes=tuple(hashes),
        hash_block_size=hash_block_size,
    )


def run_engine(cfg: SimConfig, requests: Sequence[Request], exact: bool = False) -> RunOutput:
    """Run the serving engine directly on ``requests`` (resolving inline specs only)."""
    assert isinstance(cfg.model, ModelSpec) and isinstance(cfg.gpu, GPUSpec)
    sim = ServingSimulation(cfg, cfg.model, cfg.gpu, list(requests), exact_steps=exact)
    return sim.run()


def by_id(run: RunOutput) -> dict[int, Any]:
    return {s.req.request_id: s for s in run.seqs}
