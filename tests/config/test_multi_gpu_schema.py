"""The multi-GPU part of the config schema (shared contract): names, validation, presets."""

from __future__ import annotations

import pytest

from kvsim.config.loader import list_presets, load_config
from kvsim.errors import ConfigError


def test_contract_defaults() -> None:
    cfg = load_config()
    cl, s = cfg.cluster, cfg.scheduler
    assert cl.router == "round_robin" and cl.router_params == {}
    assert (cl.decode_routing.enabled, cl.decode_routing.handoff_weight) == (False, 1.0)
    assert (cl.global_queue.enabled, cl.global_queue.max_depth) == (True, None)
    assert (cl.max_retries, cl.instances, cl.topology) == (0, [], None)
    assert (s.queue_policy, s.fair_weights, s.max_queue) == ("fifo", {}, None)
    assert (s.memory_pressure, s.evict_victim) == ("preempt", "fifo")


@pytest.mark.parametrize(
    ("override", "path", "words"),
    [
        ("cluster.router=fastest", "cluster.router", "'fastest'; known: cluster_p2c, least_kv"),
        ("scheduler.queue_policy=lifo", "scheduler.queue_policy", "known: fair, fifo"),
        ("scheduler.memory_pressure=drop", "scheduler.memory_pressure", "'reject', 'evict'"),
        ("scheduler.evict_victim=mru", "scheduler.evict_victim", "'fifo' or 'lru'"),
        ("scheduler.fair_weights={a: 0}", "scheduler.fair_weights", "must be > 0"),
        ("cluster.instances=[{gpu: h100, count: 0}]", "cluster.instances[0].count", ""),
        ("cluster.instances=[{gpu: h100, speed: 3}]", "cluster.instances[0].speed", "unknown key"),
        ("cluster.instances=[{gpu: tpu9}]", "cluster.instances", "unknown gpu 'tpu9'"),
        ("cluster.topology.links=[{src: 0, dst: 0, bandwidth_gbytes_per_s: 1}]",
         "cluster.topology.links[0]", "two different GPUs"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key_path(override: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override])
    assert str(info.value).startswith(path), str(info.value)
    assert words in str(info.value)


def test_router_params_are_checked_by_the_router() -> None:
    from kvsim.api import simulate

    cfg = load_config(
        preset="smoke",
        overrides=["cluster.router=prefix_aware", "cluster.router_params={penalty: 1}"],
    )
    with pytest.raises(ConfigError, match=r"^cluster\.router_params\.penalty.*load_penalty"):
        simulate(cfg, plots=False)


@pytest.mark.parametrize("name", ["multi-gpu-hetero", "seed002-stress"])
def test_new_presets_are_listed_and_valid(name: str) -> None:
    assert name in dict(list_presets())
    assert dict(list_presets())[name]
    cfg = load_config(preset=name)
    assert len(cfg.cluster.instances) >= 2
    assert cfg.cluster.topology is not None and cfg.cluster.topology.links


def test_hetero_preset_has_two_h100_and_two_a100() -> None:
    cfg = load_config(preset="multi-gpu-hetero")
    gpus = [(i.gpu, i.count) for i in cfg.cluster.instances]
    assert gpus == [("h100", 2), ("a100-80gb", 2)]
