"""The built-in model and GPU catalogs: every entry validates, KV sizes are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsim.config.catalog import GPUSpec, ModelSpec, gpu_catalog, load_catalog_file, model_catalog
from kvsim.errors import ConfigError

EXPECTED_MODELS = {
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-405b",
    "llama-2-7b",
    "llama-2-70b",
    "qwen2.5-7b",
    "qwen2.5-72b",
    "mixtral-8x7b",
    "deepseek-v3",
}
EXPECTED_GPUS = {"a100-40gb", "a100-80gb", "h100", "h200", "b200", "l40s", "mi300x", "rtx-4090"}


def test_catalogs_hold_the_documented_entries() -> None:
    assert set(model_catalog()) == EXPECTED_MODELS
    assert set(gpu_catalog()) == EXPECTED_GPUS


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_every_model_validates_and_cites_a_source(name: str) -> None:
    spec = model_catalog()[name]
    assert isinstance(spec, ModelSpec)
    assert spec.name == name
    assert spec.source.startswith("https://huggingface.co/")
    assert spec.num_attention_heads * spec.head_dim >= spec.hidden_size or spec.attention == "mla"
    assert spec.kv_bytes_per_token > 0
    # round trip through the schema: the stored fields are a valid ModelSpec
    assert ModelSpec.model_validate(spec.model_dump()) == spec


@pytest.mark.parametrize("name", sorted(EXPECTED_GPUS))
def test_every_gpu_validates_and_cites_a_source(name: str) -> None:
    spec = gpu_catalog()[name]
    assert isinstance(spec, GPUSpec)
    assert spec.name == name
    assert spec.source.startswith("https://")
    assert spec.cost_per_hour is not None and spec.cost_per_hour > 0
    assert GPUSpec.model_validate(spec.model_dump()) == spec
    if spec.fp8_flops is not None:
        assert spec.fp8_flops == pytest.approx(2 * spec.bf16_flops, rel=0.02)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama-3-8b", 32 * 2 * 8 * 128 * 2),  # 131072
        ("llama-3-70b", 80 * 2 * 8 * 128 * 2),
        ("llama-3.1-405b", 126 * 2 * 8 * 128 * 2),
        ("llama-2-7b", 32 * 2 * 32 * 128 * 2),  # MHA: 524288
        ("llama-2-70b", 80 * 2 * 8 * 128 * 2),
        ("qwen2.5-7b", 28 * 2 * 4 * 128 * 2),
        ("qwen2.5-72b", 80 * 2 * 8 * 128 * 2),
        ("mixtral-8x7b", 32 * 2 * 8 * 128 * 2),
        ("deepseek-v3", 61 * (512 + 64) * 2),  # MLA latent + RoPE key, BF16 cache
    ],
)
def test_kv_bytes_per_token_exact(name: str, expected: int) -> None:
    assert model_catalog()[name].kv_bytes_per_token == expected


def test_kv_bytes_headline_values() -> None:
    assert model_catalog()["llama-3-8b"].kv_bytes_per_token == 131072
    assert model_catalog()["llama-2-7b"].kv_bytes_per_token == 524288
    ds = model_catalog()["deepseek-v3"]
    assert ds.kv_bytes_per_token == 61 * (512 + 64) * ds.kv_element_bytes == 70272


def test_model_shapes_from_hf_configs() -> None:
    m = model_catalog()
    assert (m["llama-3-8b"].num_layers, m["llama-3-8b"].hidden_size) == (32, 4096)
    assert m["llama-3-8b"].max_model_len == 8192
    assert (m["llama-3.1-405b"].num_layers, m["llama-3.1-405b"].hidden_size) == (126, 16384)
    assert m["llama-3.1-405b"].max_model_len == 131072
    assert m["llama-2-7b"].attention == "mha"
    assert m["llama-2-7b"].num_kv_heads == m["llama-2-7b"].num_attention_heads == 32
    assert (m["qwen2.5-7b"].hidden_size, m["qwen2.5-7b"].num_kv_heads) == (3584, 4)


def test_moe_and_mla_fields() -> None:
    mixtral = model_catalog()["mixtral-8x7b"]
    assert mixtral.num_params == 46.7e9
    assert mixtral.active_params == 12.9e9
    ds = model_catalog()["deepseek-v3"]
    assert ds.attention == "mla"
    assert (ds.mla_kv_lora_rank, ds.mla_rope_dim, ds.num_layers) == (512, 64, 61)
    assert (ds.num_params, ds.active_params) == (671e9, 37e9)
    assert ds.dtype_bytes == 1
    assert ds.weight_bytes == 671e9
    # dense models: active == total
    assert model_catalog()["llama-3-8b"].active_params == model_catalog()["llama-3-8b"].num_params


def test_gpu_headline_numbers() -> None:
    g = gpu_catalog()
    assert g["h100"].hbm_bytes == 80e9
    assert g["h100"].hbm_bandwidth_bytes_per_s == 3.35e12
    assert g["h100"].nvlink_bandwidth_bytes_per_s == 450e9
    assert g["h200"].hbm_bytes == 141e9
    assert g["a100-40gb"].fp8_flops is None
    assert g["a100-80gb"].fp8_flops is None
    assert g["l40s"].nvlink_bandwidth_bytes_per_s == 0
    assert g["rtx-4090"].nvlink_bandwidth_bytes_per_s == 0
    assert g["mi300x"].hbm_bytes == 192e9
    # every bandwidth is per direction, so PCIe is at most Gen5 x16 each way here
    assert all(spec.pcie_bandwidth_bytes_per_s <= 64e9 for spec in g.values())


def test_load_catalog_file_extra_entries(tmp_path: Path) -> None:
    f = tmp_path / "extra.yaml"
    f.write_text(
        "models:\n"
        "  Tiny-1B:\n"
        "    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n"
        "    num_kv_heads: 2\n    head_dim: 16\n    num_params: 1.0e+9\n"
        "gpus:\n"
        "  toy:\n"
        "    hbm_bytes: 1.0e+9\n    hbm_bandwidth_bytes_per_s: 1.0e+11\n"
        "    bf16_flops: 1.0e+13\n    pcie_bandwidth_bytes_per_s: 1.0e+9\n"
    )
    models, gpus = load_catalog_file(f)
    assert set(models) == {"tiny-1b"}
    assert models["tiny-1b"].kv_bytes_per_token == 2 * 2 * 2 * 16 * 2
    assert gpus["toy"].nvlink_bandwidth_bytes_per_s == 0


def test_load_catalog_file_bad_field_names_the_entry(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("gpus:\n  toy:\n    hbm_bytes: -1\n")
    with pytest.raises(ConfigError) as info:
        load_catalog_file(f)
    assert "toy" in str(info.value)
    assert "\n" not in str(info.value)
