from __future__ import annotations

import pytest

from helpers import TOY_GPU, TOY_MODEL
from kvsim.config.catalog import gpu_catalog, model_catalog
from kvsim.config.schema import PerfConfig
from kvsim.perf.roofline import RooflineModel


def test_coefficients_from_specs() -> None:
    perf = PerfConfig(compute_efficiency=0.5, memory_efficiency=0.8, iteration_overhead_ms=2.0)
    tm = RooflineModel.from_specs(TOY_MODEL, TOY_GPU, perf, tp=1)
    assert tm.overhead_s == 0.002
    assert tm.sec_per_token_compute == pytest.approx(2e9 / 5e13)
    assert tm.sec_per_ctx_compute == pytest.approx(4 * 2 * 64 / 5e13)
    assert tm.sec_weights_memory == pytest.approx(2e9 / 8e11)
    assert tm.sec_per_kv_token_memory == pytest.approx(512 / 8e11)
    assert tm.sec_per_token_comm == 0.0
    described = tm.describe()
    assert described["kv_bytes_per_token"] == 512
    assert described["iteration_overhead_s"] == 0.002


def test_tensor_parallel_divides_work_and_adds_allreduce() -> None:
    m = model_catalog()["llama-3-70b"]
    g = gpu_catalog()["h100"]
    tm1 = RooflineModel.from_specs(m, g, PerfConfig(), tp=1)
    tm4 = RooflineModel.from_specs(m, g, PerfConfig(), tp=4)
    assert tm4.sec_weights_memory == pytest.approx(tm1.sec_weights_memory / 4)
    assert tm4.sec_per_token_compute == pytest.approx(tm1.sec_per_token_compute / 4)
    # 80 layers x 2 all-reduces x 8192 x 2 B x 2*(3/4) over NVLink
    expect = 80 * 2 * 8192 * 2 * 2 * 3 / 4 / g.nvlink_bandwidth_bytes_per_s
    assert tm4.sec_per_token_comm == pytest.approx(expect)


def test_decode_is_memory_bound_and_prefill_compute_bound_for_llama3_8b_on_h100() -> None:
    tm = RooflineModel.from_specs(
        model_catalog()["llama-3-8b"], gpu_catalog()["h100"], PerfConfig(), 1
    )
    decode = tm.decode_step_time(8, 8 * 1000)
    weights_only = tm.overhead_s + tm.sec_weights_memory
    assert decode > weights_only
    # one 2048-token prefill: compute dominates memory
    compute = 2048 * tm.sec_per_token_compute + 2048 * 2049 / 2 * tm.sec_per_ctx_compute
    memory = tm.sec_weights_memory + 2048 * tm.sec_per_kv_token_memory
    assert compute > memory
    assert tm.step_time(2048, 2048 * 2049 / 2, 2048) == pytest.approx(tm.overhead_s + compute)
