"""Roofline time model of one batch iteration on one model replica (TP group).

    step_s = overhead + comm + max(compute, memory)

    compute = (2 * active_params * num_tokens + 4 * layers * q_dim * attn_ctx) / (peak * eff_c * tp)
    memory  = (weight_bytes + kv_bytes_per_token * kv_read_tokens)      / (hbm_bw * eff_m * tp)
    comm    = num_tokens * allreduce_bytes_per_token / nvlink_bw        (0 when tp == 1)

where ``num_tokens`` is the number of new tokens in the step, ``attn_ctx`` the sum over new tokens
of the context each attends to, and ``kv_read_tokens`` the KV tokens read from HBM.

Every term is linear in (num_tokens, attn_ctx, kv_read_tokens). For a decode step of ``B``
sequences with total context ``S`` the three are ``(B, S, S)``, so within a decode span
(S grows by B per step) the step time is ``a + max(c0 + c1*k, m0 + m1*k)``: the closed form of
:mod:`kvsim.serving.span` relies on exactly this.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.schema import PerfConfig

__all__ = ["RooflineModel"]


@dataclass(frozen=True, slots=True)
class RooflineModel:
    """Per-replica coefficients (seconds per unit). Build with :meth:`from_specs`."""

    overhead_s: float
    sec_per_token_compute: float  # 2 * active_params / (flops)
    sec_per_ctx_compute: float  # 4 * layers * q_dim / (flops)
    sec_weights_memory: float  # weight_bytes / bw
    sec_per_kv_token_memory: float  # kv_bytes_per_token / bw
    sec_per_token_comm: float  # TP all-reduce bytes per token / link bw
    swap_sec_per_token: float  # host-link transfer time of one token's KV (swap in or out)
    figures: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_specs(cls, model: ModelSpec, gpu: GPUSpec, perf: PerfConfig, tp: int) -> RooflineModel:
        """Derive the coefficients; ``figures`` records every number used (for run_meta)."""
        peak = gpu.fp8_flops if (perf.use_fp8_compute and gpu.fp8_flops) else gpu.bf16_flops
        flops = peak * perf.compute_efficiency * tp
        bw = gpu.hbm_bandwidth_bytes_per_s * perf.memory_efficiency * tp
        act_bytes = 2.0
        # Megatron TP: two all-reduces per layer of hidden-size activations; ring all-reduce
        # moves 2*(tp-1)/tp of the buffer per GPU.
        if tp > 1:
            link = gpu.nvlink_bandwidth_bytes_per_s or gpu.pcie_bandwidth_bytes_per_s
            ar_bytes = model.num_layers * 2 * model.hidden_size * act_bytes * 2 * (tp - 1) / tp
            comm = ar_bytes / link
        else:
            comm = 0.0
        figures = (
            ("peak_flops_per_gpu", peak),
            ("compute_efficiency", perf.compute_efficiency),
            ("hbm_bandwidth_bytes_per_s_per_gpu", gpu.hbm_bandwidth_bytes_per_s),
            ("memory_efficiency", perf.memory_efficiency),
            ("tensor_parallel", float(tp)),
            ("iteration_overhead_s", perf.iteration_overhead_ms / 1e3),
            ("active_params", model.active_params),
            ("weight_bytes", model.weight_bytes),
            ("kv_bytes_per_token", model.kv_bytes_per_token),
            ("num_layers", float(model.num_layers)),
            ("q_dim", float(model.q_dim)),
            ("allreduce_sec_per_token", comm),
            ("host_link_bytes_per_s", gpu.pcie_bandwidth_bytes_per_s),
        )
        return cls(
            overhead_s=perf.iteration_overhead_ms / 1e3,
            sec_per_token_compute=2.0 * model.active_params / flops,
            sec_per_ctx_compute=4.0 * model.num_layers * model.q_dim / flops,
            sec_weights_memory=model.weight_bytes / bw,
            sec_per_kv_token_memory=model.kv_bytes_per_token / bw,
            sec_per_token_comm=comm,
            swap_sec_per_token=model.kv_bytes_per_token / gpu.pcie_bandwidth_bytes_per_s,
            figures=figures,
        )

    def with_rates(
        self, prefill_tokens_per_s: float | None, decode_tokens_per_s: float | None
    ) -> RooflineModel:
        """Override the compute / memory rates with measured throughputs.

        ``prefill_tokens_per_s`` rescales both compute coefficients so that one new token
        without context costs ``1 / prefill_tokens_per_s`` of compute; ``decode_tokens_per_s``
        rescales both memory coefficients so that reading the weights (a one-sequence decode
        at zero context, overhead excluded) takes ``1 / decode_tokens_per_s``. The step time
        stays linear in the batch composition (the fast-forward maths still apply)."""
        if prefill_tokens_per_s is None and decode_tokens_per_s is None:
            return self
        c = m = 1.0
        figures = list(self.figures)
        if prefill_tokens_per_s is not None:
            c = 1.0 / prefill_tokens_per_s / self.sec_per_token_compute
            figures.append(("prefill_tokens_per_s_override", prefill_tokens_per_s))
        if decode_tokens_per_s is not None:
            m = 1.0 / decode_tokens_per_s / self.sec_weights_memory
            figures.append(("decode_tokens_per_s_override", decode_tokens_per_s))
        return RooflineModel(
            overhead_s=self.overhead_s,
            sec_per_token_compute=self.sec_per_token_compute * c,
            sec_per_ctx_compute=self.sec_per_ctx_compute * c,
            sec_weights_memory=self.sec_weights_memory * m,
            sec_per_kv_token_memory=self.sec_per_kv_token_memory * m,
            sec_per_token_comm=self.sec_per_token_comm,
            swap_sec_per_token=self.swap_sec_per_token,
            figures=tuple(figures),
        )

    def step_time(self, num_tokens: int, attn_ctx: float, kv_read_tokens: int) -> float:
        """Seconds of one iteration with the given batch composition (num_tokens >= 1)."""
        compute = num_tokens * self.sec_per_token_compute + attn_ctx * self.sec_per_ctx_compute
        memory = self.sec_weights_memory + kv_read_tokens * self.sec_per_kv_token_memory
        return self.overhead_s + num_tokens * self.sec_per_token_comm + max(compute, memory)

    def decode_step_time(self, batch: int, total_ctx: int) -> float:
        """A pure decode step: ``batch`` sequences attending to ``total_ctx`` tokens in all."""
        return self.step_time(batch, total_ctx, total_ctx)

    def describe(self) -> dict[str, float]:
        """Every figure the model uses, plus the derived coefficients."""
        out = dict(self.figures)
        out.update(
            sec_per_token_compute=self.sec_per_token_compute,
            sec_per_ctx_compute=self.sec_per_ctx_compute,
            sec_weights_memory=self.sec_weights_memory,
            sec_per_kv_token_memory=self.sec_per_kv_token_memory,
            swap_sec_per_token=self.swap_sec_per_token,
        )
        return out
