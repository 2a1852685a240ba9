"""Translate a seed-002 ``kv_sim`` key-value config into a kvsim config mapping.

The old C++ simulator read a text file of ``key value`` lines (``#`` starts a comment). Its
README and its parser spelled several things differently; both are accepted here:

==================  ===============================  =====================================
what                README spelling                  parser spelling
==================  ===============================  =====================================
per-GPU VRAM        ``gpu 0 vram_bytes 24000000000``  ``gpu 0 vram 24000000000``
per-GPU options     one ``gpu N key value`` per line ``gpu N k1 v1 k2 v2 ...`` on one line
link                ``link 0 1 bandwidth_gbps 300     ``link 0 1 300 0.01`` (positional:
                    latency_ms 0.01``                 bandwidth GB/s, latency ms)
routing             (not documented)                 ``routing_policy p2c|rr|ll|...``
scheduling          ``fifo | shortest_remaining``     also ``shortest``, ``srt``
GPU defaults        (per GPU only)                   global ``vram_bytes``, ``prefill_tps``,
                                                     ``decode_tps``, ``max_concurrent``,
                                                     ``decode_sharing_cap``,
                                                     ``decode_efficiency``
==================  ===============================  =====================================

Global GPU options are defaults for every GPU; ``gpu N`` lines override them whatever the
line order (the old parser's result depended on it). GPUs: ``max(num_gpus, highest id + 1)``.
Keys and enum values are case-insensitive. Unknown keys, unknown values, missing or extra
tokens and links to missing GPUs raise :class:`ConfigError` naming ``FILE:LINE``.

Units: the old ``*_gbps`` figures are gigaBYTES per second (its code divided bytes by
``gbps * 1e6`` to get ms), so they map 1:1 to ``*_gbytes_per_s``.

What maps where (every value is written, with the old defaults filled in, so the converted
config does not depend on kvsim's defaults)::

    num_gpus, gpu N ...          -> cluster.instances[N] (name gpuN, vram_bytes, tokens/s,
                                    max_num_seqs, max_decode_batch)
    decode_tps x decode_efficiency -> instances[N].decode_tokens_per_s (one-sequence rate)
    kv_bytes_per_token           -> an inline stand-in model with exactly that many bytes
                                    (1e9 params, so weights dominate step times as in the old
                                    linear model; its 2e9 weight bytes are added to vram_bytes
                                    and gpu_memory_utilization is 1, so KV capacity = old VRAM)
    safe_reservation 1|0         -> scheduler.admission safe|lazy
    max_queue, scheduling        -> scheduler.max_queue, scheduler.queue_policy
    memory_pressure_policy       -> scheduler.memory_pressure
    eviction_policy              -> scheduler.evict_victim
    max_retries, routing_policy  -> cluster.max_retries, cluster.router
    handoff_cost_weight w        -> cluster.decode_routing.handoff_weight = 2 w (the old score
                                    load*500/decode_tps + w*handoff_ms, divided by 500, is
                                    load/decode_tps + 2w*handoff_s; enabled when > 1 GPU)
    handoff_bandwidth_gbps, _us  -> cluster.topology.nvlink_* (all GPUs on one node)
    link a b ...                 -> cluster.topology.links (bidirectional, latency in us)
    timeseries_dt_ms             -> outputs.timeseries_dt_s

Example::

    from kvsim.config.convert_kvsim import convert_kvsim_file, to_yaml
    data = convert_kvsim_file("old.cfg", trace="trace.txt")   # a plain dict
    print(to_yaml(data, source="old.cfg"))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kvsim.errors import ConfigError

__all__ = ["KvSimConfig", "convert_kvsim_file", "convert_kvsim_text", "parse_kvsim", "to_yaml"]

# The old simulator's defaults (its GPUConfig / PolicyConfig / SimConfig structs).
OLD_GPU_DEFAULTS: dict[str, float] = {
    "vram_bytes": 24 * 1024**3,
    "max_concurrent": 16,
    "prefill_tps": 1000.0,
    "decode_tps": 500.0,
    "decode_sharing_cap": 8,
    "decode_efficiency": 0.8,
}
OLD_GLOBAL_DEFAULTS: dict[str, Any] = {
    "num_gpus": 1,
    "kv_bytes_per_token": 2048,
    "safe_reservation": 1,
    "max_queue": 1024,
    "max_retries": 0,
    "scheduling": "fifo",
    "memory_pressure_policy": "reject",
    "eviction_policy": "fifo",
    "routing_policy": "p2c",
    "timeseries_dt_ms": 20.0,
    "handoff_bandwidth_gbps": 300.0,
    "handoff_latency_us": 10.0,
    "handoff_cost_weight": 0.5,
}
STAND_IN_PARAMS = 1e9
STAND_IN_WEIGHT_BYTES = 2 * STAND_IN_PARAMS  # dtype_bytes 2

_GPU_KEYS: dict[str, str] = {  # spelling -> canonical per-GPU key
    "vram": "vram_bytes",
    "vram_bytes": "vram_bytes",
    "max_concurrent": "max_concurrent",
    "prefill_tps": "prefill_tps",
    "decode_tps": "decode_tps",
    "decode_sharing_cap": "decode_sharing_cap",
    "decode_efficiency": "decode_efficiency",
}
_INT_KEYS = {
    "vram_bytes",
    "max_concurrent",
    "decode_sharing_cap",
    "num_gpus",
    "kv_bytes_per_token",
    "safe_reservation",
    "max_queue",
    "max_retries",
}
_POSITIVE = {
    "vram_bytes",
    "max_concurrent",
    "prefill_tps",
    "decode_tps",
    "decode_sharing_cap",
    "decode_efficiency",
    "num_gpus",
    "kv_bytes_per_token",
    "max_queue",
    "timeseries_dt_ms",
    "handoff_bandwidth_gbps",
    "bandwidth_gbps",
}
_ENUMS: dict[str, dict[str, str]] = {  # accepted spelling -> kvsim name
    "scheduling": {
        "fifo": "fifo",
        "shortest": "shortest_remaining",
        "srt": "shortest_remaining",
        "shortest_remaining": "shortest_remaining",
    },
    "memory_pressure_policy": {"reject": "reject", "evict": "evict"},
    "eviction_policy": {"fifo": "fifo", "lru": "lru"},
    "routing_policy": {
        "p2c": "p2c",
        "power2choices": "p2c",
        "power_of_two_choices": "p2c",
        "roundrobin": "round_robin",
        "round_robin": "round_robin",
        "rr": "round_robin",
        "leastloaded": "least_loaded",
        "least_loaded": "least_loaded",
        "least": "least_loaded",
        "ll": "least_loaded",
    },
}
_GLOBAL_KEYS = sorted({*OLD_GLOBAL_DEFAULTS, *OLD_GPU_DEFAULTS, "gpu", "link"})


@dataclass(slots=True)
class _Link:
    src: int
    dst: int
    bandwidth_gbps: float
    latency_ms: float
    line: int


@dataclass(slots=True)
class KvSimConfig:
    """A parsed old config: only the keys present, by canonical name (see module table).

    ``gpu_defaults`` holds global GPU options, ``gpus[N]`` the per-GPU overrides,
    ``links`` the link lines in file order; ``lines`` maps GPU ids to their first line.
    """

    origin: str
    globals: dict[str, Any] = field(default_factory=dict)
    gpu_defaults: dict[str, float] = field(default_factory=dict)
    gpus: dict[int, dict[str, float]] = field(default_factory=dict)
    links: list[_Link] = field(default_factory=list)

    def setting(self, key: str) -> Any:
        """The value of global ``key``, or the old simulator's default."""
        return self.globals.get(key, OLD_GLOBAL_DEFAULTS.get(key))

    @property
    def num_gpus(self) -> int:
        """``max(num_gpus, highest gpu id + 1)``, like the old parser."""
        return max([int(self.setting("num_gpus")), *(g + 1 for g in self.gpus)])

    def gpu(self, index: int) -> dict[str, float]:
        """Effective options of GPU ``index``: old defaults < globals < ``gpu N`` lines."""
        return {**OLD_GPU_DEFAULTS, **self.gpu_defaults, **self.gpus.get(index, {})}


# --------------------------------------------------------------------------- parsing


class _Line:
    """Tokens of one line with its position, for one-line errors."""

    def __init__(self, origin: str, number: int, tokens: list[str]) -> None:
        self.origin, self.number, self.tokens = origin, number, tokens

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.origin}:{self.number}", message)

    def number_of(self, key: str, text: str) -> float:
        """Parse ``text`` as the value of ``key`` (int keys must be whole numbers >= 0)."""
        try:
            value = float(text)
        except ValueError:
            raise self.error(f"{key}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise self.error(f"{key}: expected a finite number, got {text!r}")
        low = "> 0" if key in _POSITIVE else ">= 0"
        if value < 0 or (value == 0 and key in _POSITIVE):
            raise self.error(f"{key}: expected a number {low}, got {text!r}")
        if key in _INT_KEYS:
            if value != int(value):
                raise self.error(f"{key}: expected a whole number {low}, got {text!r}")
            return int(value)
        return value


def parse_kvsim(text: str, origin: str = "<config>") -> KvSimConfig:
    """Parse the old config text; raises :class:`ConfigError` ``origin:line: ...``."""
    cfg = KvSimConfig(origin=origin)
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        line = _Line(origin, number, tokens)
        key = tokens[0].lower()
        if key == "gpu":
            _parse_gpu(line, cfg)
        elif key == "link":
            cfg.links.append(_parse_link(line))
        elif key in OLD_GPU_DEFAULTS or key == "vram":
            canon = _GPU_KEYS[key]
            cfg.gpu_defaults[canon] = line.number_of(canon, _single_value(line))
        elif key in OLD_GLOBAL_DEFAULTS:
            cfg.globals[key] = _parse_global(line, key)
        else:
            raise line.error(f"unknown key {tokens[0]!r}; known: {', '.join(_GLOBAL_KEYS)}")
    n = cfg.num_gpus
    for lk in cfg.links:
        for end in (lk.src, lk.dst):
            if end >= n:
                raise ConfigError(
                    f"{origin}:{lk.line}", f"link to GPU {end}, but there are {n} GPUs (0..{n - 1})"
                )
    return cfg


def _single_value(line: _Line) -> str:
    if len(line.tokens) != 2:
        what = "missing value" if len(line.tokens) < 2 else f"unexpected {line.tokens[2]!r}"
        raise line.error(f"{line.tokens[0]}: {what} (expected '{line.tokens[0]} VALUE')")
    return line.tokens[1]


def _parse_global(line: _Line, key: str) -> Any:
    value = _single_value(line)
    if key in _ENUMS:
        table = _ENUMS[key]
        got = table.get(value.lower())
        if got is None:
            raise line.error(f"{key}: unknown value {value!r}; allowed: {', '.join(table)}")
        return got
    return line.number_of(key, value)


def _parse_gpu(line: _Line, cfg: KvSimConfig) -> None:
    toks = line.tokens
    if len(toks) < 2:
        raise line.error("gpu: missing GPU id (expected 'gpu ID KEY VALUE [KEY VALUE ...]')")
    try:
        gid = int(toks[1])
    except ValueError:
        raise line.error(f"gpu: GPU id must be a whole number >= 0, got {toks[1]!r}") from None
    if gid < 0:
        raise line.error(f"gpu: GPU id must be >= 0, got {gid}")
    rest = toks[2:]
    if not rest or len(rest) % 2:
        raise line.error(f"gpu {gid}: expected KEY VALUE pairs after the id, got {rest!r}")
    opts = cfg.gpus.setdefault(gid, {})
    for sub, value in zip(rest[::2], rest[1::2], strict=True):
        canon = _GPU_KEYS.get(sub.lower())
        if canon is None:
            known = ", ".join(_GPU_KEYS)
            raise line.error(f"gpu {gid}: unknown key {sub!r}; known: {known}")
        opts[canon] = line.number_of(canon, value)


_LINK_NAMED = {"bandwidth_gbps", "latency_ms", "latency_us"}


def _parse_link(line: _Line) -> _Link:
    toks = line.tokens
    usage = (
        "expected 'link SRC DST BW_GBPS LATENCY_MS' or "
        "'link SRC DST bandwidth_gbps BW latency_ms LAT'"
    )
    if len(toks) < 4:
        raise line.error(f"link: too few fields ({usage})")
    ends: list[int] = []
    for text in toks[1:3]:
        try:
            ends.append(int(text))
        except ValueError:
            raise line.error(f"link: GPU ids must be whole numbers, got {text!r}") from None
    src, dst = ends
    if src < 0 or dst < 0 or src == dst:
        raise line.error(f"link: needs two different GPU ids >= 0, got {src} and {dst}")
    rest = toks[3:]
    if rest[0].lower() in _LINK_NAMED:
        named = _link_named(line, rest)
        bw, lat = named.get("bandwidth_gbps"), named.get("latency_ms", 0.0)
        if bw is None:
            raise line.error(f"link: missing bandwidth_gbps ({usage})")
    else:
        if len(rest) != 2:
            raise line.error(f"link: expected bandwidth and latency after the ids ({usage})")
        bw, lat = (
            line.number_of(k, v)
            for k, v in zip(("bandwidth_gbps", "latency_ms"), rest, strict=True)
        )
    return _Link(src, dst, float(bw), float(lat), line.number)


def _link_named(line: _Line, rest: list[str]) -> dict[str, float]:
    if len(rest) % 2:
        raise line.error(f"link: expected KEY VALUE pairs after the ids, got {rest!r}")
    out: dict[str, float] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        k = key.lower()
        if k not in _LINK_NAMED:
            raise line.error(f"link: unknown key {key!r}; known: {', '.join(sorted(_LINK_NAMED))}")
        num = line.number_of(k, value)
        if k == "latency_us":
            k, num = "latency_ms", num / 1000.0
        out[k] = num
    return out


# --------------------------------------------------------------------------- translation


def _num(x: float) -> int | float:
    """Whole numbers as int (clean YAML), others as float."""
    return int(x) if float(x).is_integer() else float(x)


def stand_in_model(kv_bytes_per_token: int) -> dict[str, Any]:
    """An inline ModelSpec with exactly ``kv_bytes_per_token`` KV bytes per token (see module)."""
    return {
        "name": f"kv-sim-{kv_bytes_per_token}b-per-token",
        "num_layers": 1,
        "hidden_size": 1,
        "num_attention_heads": 1,
        "num_kv_heads": 1,
        "head_dim": 1,
        "num_params": STAND_IN_PARAMS,
        "dtype_bytes": 2.0,
        "kv_dtype_bytes": kv_bytes_per_token / 2,
        "max_model_len": 1 << 20,
        "source": "stand-in written by `kvsim convert kv-sim-config`",
    }


def _instance(index: int, opts: dict[str, float]) -> dict[str, Any]:
    return {
        "name": f"gpu{index}",
        "vram_bytes": _num(opts["vram_bytes"] + STAND_IN_WEIGHT_BYTES),
        "prefill_tokens_per_s": _num(opts["prefill_tps"]),
        "decode_tokens_per_s": _num(round(opts["decode_tps"] * opts["decode_efficiency"], 9)),
        "max_num_seqs": int(opts["max_concurrent"]),
        "max_decode_batch": int(opts["decode_sharing_cap"]),
    }


def to_kvsim(cfg: KvSimConfig, trace: str | None = None) -> dict[str, Any]:
    """The kvsim config mapping (shared contract names) for a parsed old config."""
    n = cfg.num_gpus
    instances = [_instance(g, cfg.gpu(g)) for g in range(n)]
    topology: dict[str, Any] = {
        "gpus_per_node": n,
        "nvlink_gbytes_per_s": _num(cfg.setting("handoff_bandwidth_gbps")),
        "nvlink_latency_us": _num(cfg.setting("handoff_latency_us")),
        "links": [
            {
                "src": lk.src,
                "dst": lk.dst,
                "bandwidth_gbytes_per_s": _num(lk.bandwidth_gbps),
                "latency_us": _num(round(lk.latency_ms * 1000.0, 9)),
                "bidirectional": True,
            }
            for lk in cfg.links
        ],
    }
    weight = float(cfg.setting("handoff_cost_weight"))
    out: dict[str, Any] = {
        "model": stand_in_model(int(cfg.setting("kv_bytes_per_token"))),
        "cluster": {
            "router": cfg.setting("routing_policy"),
            "max_retries": int(cfg.setting("max_retries")),
            "decode_routing": {"enabled": n > 1, "handoff_weight": _num(round(2 * weight, 12))},
            "global_queue": {"enabled": True, "max_depth": None},
            "instances": instances,
            "topology": topology,
        },
        "scheduler": {
            "admission": "safe" if cfg.setting("safe_reservation") else "lazy",
            "max_queue": int(cfg.setting("max_queue")),
            "queue_policy": cfg.setting("scheduling"),
            "memory_pressure": cfg.setting("memory_pressure_policy"),
            "evict_victim": cfg.setting("eviction_policy"),
            "gpu_memory_utilization": 1.0,
        },
        "perf": {"iteration_overhead_ms": 0.0},
        "outputs": {"timeseries_dt_s": _num(round(cfg.setting("timeseries_dt_ms") / 1000.0, 12))},
    }
    if trace is not None:
        out["workload"] = {"kind": "trace", "path": trace, "format": "whitespace"}
    return out


def convert_kvsim_text(
    text: str, origin: str = "<config>", trace: str | None = None
) -> dict[str, Any]:
    """Parse and translate old config ``text`` (``origin`` names it in errors)."""
    return to_kvsim(parse_kvsim(text, origin), trace)


def convert_kvsim_file(path: str | Path, trace: str | None = None) -> dict[str, Any]:
    """Read, parse and translate the old config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), "config file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read config file: {exc.strerror}") from None
    return convert_kvsim_text(text, str(p), trace)


_HEADER = """\
# Converted by `kvsim convert kv-sim-config` from {source}.
# Behaviour differs from the old simulator where kvsim models more (docs/topology.md):
# - step times come from the roofline rescaled to each GPU's tokens/s (a batch of decodes
#   shares a step instead of dividing decode_tps); decode_tokens_per_s = decode_tps x
#   decode_efficiency; max_decode_batch = decode_sharing_cap.
# - model is a stand-in with exactly kv_bytes_per_token bytes per token; vram_bytes adds
#   its {weights:.0e} weight bytes so that the KV room equals the old vram_bytes.
# - explicit links are honoured even when slower than the default; pairs without an
#   explicit path use the old handoff_bandwidth_gbps / handoff_latency_us.
"""


def to_yaml(data: dict[str, Any], source: str = "a kv_sim config", trace: bool = True) -> str:
    """YAML text of a converted mapping, with a header comment of what changed meaning."""
    head = _HEADER.format(source=source, weights=STAND_IN_WEIGHT_BYTES)
    if trace and "workload" not in data:
        head += "# No --trace given: add a workload (e.g. kind: trace, format: whitespace).\n"
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return head + body
