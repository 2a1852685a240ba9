"""Config loading: presets, file layering, --set overrides, one-line errors, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsim.config.catalog import GPUSpec, ModelSpec, gpu_catalog, model_catalog
from kvsim.config.loader import (
    config_to_yaml,
    deep_merge,
    list_presets,
    load_config,
    parse_override,
    preset_text,
    resolve_gpu,
    resolve_model,
)
from kvsim.config.schema import SimConfig
from kvsim.config.workload import SyntheticWorkload, TraceWorkload
from kvsim.errors import ConfigError


def _error(**kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)  # type: ignore[arg-type]
    err = info.value
    assert "\n" not in str(err), str(err)
    return err


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- basics


def test_no_arguments_gives_schema_defaults() -> None:
    assert load_config() == SimConfig()


def test_file_values_are_applied(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.yaml", "scheduler:\n  block_size: 32\ncluster:\n  num_instances: 3\n")
    cfg = load_config(p)
    assert cfg.scheduler.block_size == 32
    assert cfg.cluster.num_instances == 3
    assert cfg.scheduler.admission == SimConfig().scheduler.admission  # untouched default


def test_str_path_and_empty_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "empty.yaml", "# nothing here\n")
    assert load_config(str(p)) == SimConfig()


def test_file_is_applied_over_preset(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.yaml", "workload:\n  rate: 5.0\nscheduler:\n  admission: safe\n")
    base = load_config(preset="default")
    cfg = load_config(p, preset="default")
    assert isinstance(cfg.workload, SyntheticWorkload)
    assert cfg.workload.rate == 5.0
    assert cfg.workload.num_requests == base.workload.num_requests  # merged, not replaced
    assert cfg.workload.shared_prefix == base.workload.shared_prefix  # type: ignore[union-attr]
    assert cfg.scheduler.admission == "safe"
    assert cfg.cluster == base.cluster


def test_changing_kind_replaces_the_section(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.yaml", "workload:\n  kind: trace\n  path: trace.jsonl\n")
    cfg = load_config(p, preset="default")
    assert isinstance(cfg.workload, TraceWorkload)
    assert cfg.workload.path == "trace.jsonl"
    cfg2 = load_config(preset="default", overrides=["workload.kind=trace", "workload.path=t.csv"])
    assert isinstance(cfg2.workload, TraceWorkload)
    assert cfg2.workload.path == "t.csv"


def test_workload_kind_defaults_to_synthetic(tmp_path: Path) -> None:
    p = _write(tmp_path, "w.yaml", "workload:\n  num_requests: 7\n")
    cfg = load_config(p)
    assert isinstance(cfg.workload, SyntheticWorkload)
    assert cfg.workload.num_requests == 7


def test_seed_argument_wins_over_everything(tmp_path: Path) -> None:
    p = _write(tmp_path, "s.yaml", "seed: 3\n")
    assert load_config(p, overrides=["seed=4"], seed=9).seed == 9
    assert load_config(p, overrides=["seed=4"]).seed == 4
    assert load_config(p).seed == 3


def test_deep_merge_does_not_modify_inputs() -> None:
    base = {"a": {"b": 1, "c": 2}, "k": {"kind": "x", "p": 1}}
    top = {"a": {"c": 3}, "k": {"kind": "y"}}
    out = deep_merge(base, top)
    assert out == {"a": {"b": 1, "c": 3}, "k": {"kind": "y"}}
    assert base == {"a": {"b": 1, "c": 2}, "k": {"kind": "x", "p": 1}}


def test_scientific_notation_is_a_float(tmp_path: Path) -> None:
    p = _write(tmp_path, "f.yaml", "scheduler:\n  kv_capacity_bytes: 4e9\n")
    assert load_config(p).scheduler.kv_capacity_bytes == 4e9


# ----------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "keys", "value"),
    [
        ("scheduler.chunked_prefill=true", ["scheduler", "chunked_prefill"], True),
        ("scheduler.block_size=3", ["scheduler", "block_size"], 3),
        ("scheduler.gpu_memory_utilization=0.5", ["scheduler", "gpu_memory_utilization"], 0.5),
        ("catalog_files=[a.yaml, b.yaml]", ["catalog_files"], ["a.yaml", "b.yaml"]),
        ("scheduler.kv_capacity_bytes=1e9", ["scheduler", "kv_capacity_bytes"], 1e9),
        ("model=llama-3-70b", ["model"], "llama-3-70b"),
        ("workload.path=a=b.csv", ["workload", "path"], "a=b.csv"),
        ("limits.max_sim_time_s=null", ["limits", "max_sim_time_s"], None),
        ("limits.max_sim_time_s=", ["limits", "max_sim_time_s"], None),
        (" scheduler.block_size = 8", ["scheduler", "block_size"], 8),
    ],
)
def test_parse_override_types(text: str, keys: list[str], value: object) -> None:
    got_keys, got_value = parse_override(text)
    assert got_keys == keys
    assert got_value == value
    assert type(got_value) is type(value)


def test_overrides_apply_in_order_and_typed() -> None:
    cfg = load_config(
        overrides=[
            "scheduler.block_size=8",
            "scheduler.block_size=32",
            "scheduler.chunked_prefill=false",
            "scheduler.gpu_memory_utilization=0.5",
            "workload.shared_prefix.tokens=256",
            "workload.rate=1e2",
            "catalog_files=[]",
        ]
    )
    assert cfg.scheduler.block_size == 32
    assert cfg.scheduler.chunked_prefill is False
    assert cfg.scheduler.gpu_memory_utilization == 0.5
    assert isinstance(cfg.workload, SyntheticWorkload)
    assert cfg.workload.shared_prefix is not None
    assert cfg.workload.shared_prefix.tokens == 256
    assert cfg.workload.rate == 100.0


def test_override_replaces_a_scalar_with_a_mapping() -> None:
    spec = model_catalog()["llama-3-8b"].model_dump()
    spec["name"] = "mine"
    spec["num_layers"] = 16
    inline = "{" + ", ".join(f"{k}: {v!r}" for k, v in spec.items() if v is not None) + "}"
    cfg = load_config(overrides=[f"model={inline}"])
    assert isinstance(cfg.model, ModelSpec)
    assert resolve_model(cfg).kv_bytes_per_token == 131072 // 2


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("overrides", "path", "fragments"),
    [
        (["scheduler.admission=eager"], "scheduler.admission", ["'safe' or 'lazy'", "'eager'"]),
        (
            ["scheduler.blok_size=3"],
            "scheduler.blok_size",
            ["unknown key", "allowed: admission, block_size,", "did you mean 'block_size'"],
        ),
        (["workload.kind=eager"], "workload.kind", ["synthetic, trace", "'eager'"]),
        (["workload.ratex=1"], "workload.ratex", ["unknown key", "rate"]),
        (["workload.rate=-1"], "workload.rate", ["greater than 0", "-1"]),
        (["workload.kind=trace"], "workload.path", ["missing"]),
        (["workload.prompt.dist=x"], "workload.prompt.dist", ["'lognormal'"]),
        (
            ["workload.prompt.low=9", "workload.prompt.high=2"],
            "workload.prompt",
            ["low must be <= high"],
        ),
        (["scheduler.block_size=abc"], "scheduler.block_size", ["integer", "'abc'"]),
        (["scheduler.block_size=0"], "scheduler.block_size", ["greater than or equal to 1"]),
        (["scheduler=5"], "scheduler", ["mapping"]),
        (["seed=-1"], "seed", ["greater than or equal to 0", "(got -1)"]),
        (["model=5"], "model", ["a string or a mapping"]),
        (
            ["model={num_layers: 3}"],
            "model",
            ["missing required keys", "hidden_size", "num_params"],
        ),
        (["catalog_files=[1]"], "catalog_files[0]", ["string"]),
        (["catalog_files=abc"], "catalog_files", ["list"]),
        (
            [
                "scheduler.max_num_batched_tokens=2",
                "scheduler.max_num_seqs=5",
                "scheduler.chunked_prefill=false",
            ],
            "scheduler.max_num_batched_tokens",
            ["scheduler.max_num_seqs"],
        ),
        (["foo=1"], "foo", ["unknown key", "allowed: cache, calibration, catalog_files"]),
        (["model.num_layers=3"], "model", ["not a mapping", "model.num_layers"]),
        (["scheduler.block_size.x=3"], "scheduler.block_size", ["not a mapping"]),
        (["scheduler.block_size=[1"], "scheduler.block_size", ["cannot parse"]),
        (["noequals"], "--set", ["KEY.PATH=VALUE"]),
        (["a..b=1"], "--set", ["KEY.PATH=VALUE"]),
        (["model=gpt-9"], "model", ["unknown model 'gpt-9'", "llama-3-8b"]),
        (["gpu=tpu-v9"], "gpu", ["unknown gpu 'tpu-v9'", "h100"]),
    ],
)
def test_errors_are_one_line_with_key_path(
    overrides: list[str], path: str, fragments: list[str]
) -> None:
    err = _error(overrides=overrides)
    assert err.path == path
    text = str(err)
    assert text.startswith(f"{path}: ")
    for frag in fragments:
        assert frag in text, text


def test_error_example_strings_exactly() -> None:
    assert str(_error(overrides=["scheduler.admission=eager"])) == (
        "scheduler.admission: input should be 'safe' or 'lazy' (got 'eager')"
    )
    assert str(_error(overrides=["workload.kind=eager"])) == (
        "workload.kind: unknown kind 'eager'; allowed kinds: synthetic, trace"
    )
    allowed = ", ".join(sorted(SimConfig.model_fields["scheduler"].annotation.model_fields))  # type: ignore[union-attr]
    assert str(_error(overrides=["scheduler.blok_size=3"])).startswith(
        f"scheduler.blok_size: unknown key; allowed: {allowed}"
    )


def test_union_branch_labels_are_stripped_from_paths(tmp_path: Path) -> None:
    p = _write(tmp_path, "w.yaml", "workload:\n  kind: synthetic\n  rate: 0\n")
    err = _error(path=p)
    assert err.path == "workload.rate"
    assert "synthetic" not in str(err)
    err = _error(overrides=["workload.kind=trace", "workload.path=x", "workload.limit=0"])
    assert err.path == "workload.limit"


def test_several_problems_still_one_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.yaml", "scheduler:\n  block_size: 0\n  admission: x\nseed: -3\n")
    err = _error(path=p)
    assert "more problems" in str(err)


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "bad.yaml", "scheduler:\n  block_size: 16\n  admission: [safe\n")
    err = _error(path=p)
    assert err.path.startswith(f"{p}:")
    assert "invalid YAML" in str(err)
    line = int(err.path.rsplit(":", 1)[1])
    assert 3 <= line <= 4


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "dup.yaml", "seed: 1\nscheduler:\n  block_size: 8\n  block_size: 9\n")
    err = _error(path=p)
    assert err.path == f"{p}:4"
    assert "duplicate key 'block_size'" in str(err)


@pytest.mark.parametrize(
    ("text", "fragment"), [("- 1\n- 2\n", "mapping"), ("just a string\n", "mapping")]
)
def test_non_mapping_file(tmp_path: Path, text: str, fragment: str) -> None:
    p = _write(tmp_path, "x.yaml", text)
    err = _error(path=p)
    assert err.path == str(p)
    assert fragment in str(err)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    err = _error(path=tmp_path / "nope.yaml")
    assert "not found" in str(err)
    assert "nope.yaml" in err.path
    err = _error(path=tmp_path)  # a directory
    assert "cannot read" in str(err)
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert "UTF-8" in str(_error(path=bad))


def test_unknown_preset_names_the_known_ones() -> None:
    err = _error(preset="nope")
    assert err.path == "preset"
    assert "unknown preset 'nope'" in str(err)
    for name, _ in list_presets():
        assert name in str(err)
    with pytest.raises(ConfigError):
        preset_text("nope")


# ----------------------------------------------------------------------------- catalog lookup


def test_resolve_by_name_is_case_insensitive() -> None:
    cfg = load_config(overrides=["model=Llama-3-8B", "gpu=H100"])
    assert resolve_model(cfg) == model_catalog()["llama-3-8b"]
    assert resolve_gpu(cfg) == gpu_catalog()["h100"]


def test_resolve_inline_specs() -> None:
    spec = GPUSpec(
        name="toy",
        hbm_bytes=1e9,
        hbm_bandwidth_bytes_per_s=1e11,
        bf16_flops=1e13,
        pcie_bandwidth_bytes_per_s=1e9,
    )
    cfg = SimConfig(gpu=spec)
    assert resolve_gpu(cfg) is spec


def test_catalog_files_take_precedence(tmp_path: Path) -> None:
    cat = _write(
        tmp_path,
        "cat.yaml",
        "models:\n"
        "  Llama-3-8B:\n"
        "    num_layers: 2\n    hidden_size: 64\n    num_attention_heads: 4\n"
        "    num_kv_heads: 2\n    head_dim: 16\n    num_params: 1e6\n"
        "  my-model:\n"
        "    num_layers: 4\n    hidden_size: 64\n    num_attention_heads: 4\n"
        "    num_kv_heads: 4\n    head_dim: 16\n    num_params: 1e6\n"
        "gpus:\n"
        "  my-gpu:\n"
        "    hbm_bytes: 1.0e+9\n    hbm_bandwidth_bytes_per_s: 1.0e+11\n"
        "    bf16_flops: 1.0e+13\n    pcie_bandwidth_bytes_per_s: 1.0e+9\n",
    )
    cfg = load_config(overrides=[f"catalog_files=[{cat}]"])
    assert resolve_model(cfg).num_layers == 2  # the file's llama-3-8b wins
    cfg = load_config(overrides=[f"catalog_files=[{cat}]", "model=MY-MODEL", "gpu=my-gpu"])
    assert resolve_model(cfg).num_layers == 4
    assert resolve_gpu(cfg).hbm_bytes == 1e9


def test_unknown_name_lists_known_entries() -> None:
    cfg = SimConfig(model="nope", gpu="nada")
    with pytest.raises(ConfigError) as info:
        resolve_model(cfg)
    assert info.value.path == "model"
    assert str(info.value).startswith("model: unknown model 'nope'; known: ")
    assert all(name in str(info.value) for name in model_catalog())
    with pytest.raises(ConfigError) as info:
        resolve_gpu(cfg)
    assert info.value.path == "gpu"
    assert all(name in str(info.value) for name in gpu_catalog())


def test_bad_catalog_file_is_a_config_error(tmp_path: Path) -> None:
    err = _error(overrides=[f"catalog_files=[{tmp_path / 'missing.yaml'}]"])
    assert "catalog_files" in err.path
    bad = _write(tmp_path, "bad.yaml", "models: [1\n")
    err = _error(overrides=[f"catalog_files=[{bad}]"])
    assert err.path.startswith("catalog_files")
    assert "invalid YAML" in str(err)


# ----------------------------------------------------------------------------- presets


def test_presets_are_listed_with_descriptions() -> None:
    presets = dict(list_presets())
    assert {"smoke", "default"} <= set(presets)
    for name, description in presets.items():
        assert description, name
        assert "\n" not in description
        assert preset_text(name).startswith(f"# description: {description}")


@pytest.mark.parametrize("name", [n for n, _ in list_presets()])
def test_every_preset_validates(name: str) -> None:
    cfg = load_config(preset=name)
    assert resolve_model(cfg).name
    assert resolve_gpu(cfg).name
    assert load_config(preset=name.upper()) == cfg


def test_smoke_preset_is_small() -> None:
    cfg = load_config(preset="smoke")
    assert isinstance(cfg.workload, SyntheticWorkload)
    assert cfg.workload.num_requests <= 300
    assert cfg.cluster.num_instances == 1
    assert resolve_model(cfg).name == "llama-3-8b"
    assert resolve_gpu(cfg).name == "h100"


def test_default_preset_is_the_documented_scenario() -> None:
    cfg = load_config(preset="default")
    wl = cfg.workload
    assert isinstance(wl, SyntheticWorkload)
    assert cfg.model == "llama-3-8b" and cfg.gpu == "h100"
    assert cfg.cluster.num_instances == 2
    assert 2000 <= wl.num_requests <= 5000
    assert 20 <= wl.rate <= 30
    assert wl.prompt.dist == "lognormal" and wl.output.dist == "lognormal"
    assert wl.shared_prefix is not None and wl.sessions is not None
    assert cfg.cache.prefix_caching
    assert cfg.scheduler.admission == "lazy"
    assert cfg.scheduler.preemption == "recompute"
    assert cfg.outputs.timeseries_dt_s == 1.0


# ----------------------------------------------------------------------------- round trip


def _roundtrip(cfg: SimConfig, tmp_path: Path) -> SimConfig:
    p = tmp_path / "snap.yaml"
    p.write_text(config_to_yaml(cfg))
    return load_config(p)


@pytest.mark.parametrize("name", [n for n, _ in list_presets()])
def test_config_to_yaml_round_trips_presets(name: str, tmp_path: Path) -> None:
    cfg = load_config(preset=name, seed=11)
    assert _roundtrip(cfg, tmp_path) == cfg


def test_config_to_yaml_round_trips_inline_specs_and_traces(tmp_path: Path) -> None:
    extra = _write(tmp_path, "extra.yaml", "models: {}\n")
    cfg = SimConfig(
        model=model_catalog()["deepseek-v3"].model_copy(update={"name": "ds"}),
        gpu=gpu_catalog()["b200"],
        catalog_files=(str(extra),),
        workload=TraceWorkload(path="t.jsonl", limit=10),
        scheduler={"kv_capacity_bytes": 12.5e9, "max_waiting": 3},  # type: ignore[arg-type]
        limits={"max_sim_time_s": 1e-3},  # type: ignore[arg-type]
    )
    text = config_to_yaml(cfg)
    assert "kind: trace" in text
    assert _roundtrip(cfg, tmp_path) == cfg
