"""GPU interconnect topology: best paths between instances and the links they cross.

Units: bandwidth in **bytes/s per direction**, latency and times in **seconds** (the config
speaks GB/s and microseconds; :meth:`Topology.build` converts). GPU indices are instance
indices ``0 .. n-1``; :data:`HOST` (-1) stands for host memory (swap over PCIe).

Model
-----
* **Explicit links** (``cluster.topology.links``) form a directed graph. A bidirectional link
  adds both directions; the last declaration of an ordered pair wins, so a slower direction
  is honoured. A path's bandwidth is its **bottleneck** (cut-through / pipelined forwarding,
  not store-and-forward) and its latency the **sum** over its hops.
* **Best path** = the path of **minimal transfer time** ``latency + nbytes / bandwidth`` for
  the message size asked for. No single scalar weight makes (bottleneck, sum) a Floyd–Warshall
  semiring, so we run Floyd–Warshall once per distinct link bandwidth ``t`` (descending) on
  latency alone, over the links of bandwidth >= ``t``. The optimal path ``P`` of bottleneck
  ``b`` lies in the graph of threshold ``b`` and the min-latency path there is at least as
  wide and at most as slow, so the minimum over thresholds is exact for every size. Each
  pair keeps the Pareto set of (bandwidth, latency) candidates (at most one per distinct
  bandwidth). ``nbytes=None`` asks for the widest path (ties: lowest latency), the limit of
  large messages. Cost: O(D m^3) with m GPUs named in links and D distinct bandwidths;
  meant for explicit graphs of up to a few hundred GPUs.
* **Defaults** for every pair with no explicit path (including GPUs no link names): same
  GPU -> free (infinite bandwidth, zero latency); same node -> NVLink; different nodes of one
  rack -> network; different racks (rack = node // ``nodes_per_rack``) -> cross-rack;
  GPU <-> HOST -> PCIe. Defaults are single hops and are never combined with explicit
  links into multi-hop paths: describe all links of a GPU you describe. They cost O(1) per
  query and no memory per pair, so a 10,240-GPU cluster without explicit links is cheap.
* **Links for sharing**: each path lists the shared resources it crosses (:attr:`PathInfo.links`)
  for :class:`kvsim.serving.transfer.TransferManager`. An explicit directed link is one
  resource. A default path crosses the sender's egress port and the receiver's ingress port
  of its level (NVSwitch and a non-blocking network fabric bottleneck at the GPU's port), so
  two transfers out of one GPU share its NVLink egress even to different peers. A cross-rack
  path also crosses the sender's and receiver's cross-rack ports (capacity ``cross_rack``,
  so one flow is capped at the cross-rack bandwidth while sharing the NIC with intra-rack
  flows) and, when ``rack_uplink_gbytes_per_s`` is set, the source rack's uplink and the
  destination rack's downlink (one resource per rack and direction).
* **Memory**: O(n) for n GPUs (per-GPU port bandwidths and node ids, per-rack uplinks); no
  per-pair table for the defaults, so 10,240 GPUs build in milliseconds and a query is O(1).
* **Variance**: :class:`NetworkVariance` draws per-transfer slowdown factors (lognormal jitter
  with a given CV, a rare tail multiplier) from a numpy Generator the caller passes;
  :class:`kvsim.serving.transfer.TransferManager` applies them.

Example::

    from kvsim.config.topology import TopologyConfig, LinkSpec
    from kvsim.serving.topology import Topology

    cfg = TopologyConfig(gpus_per_node=4, links=[
        LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=10, latency_us=1),
    ])
    topo = Topology.build([0, 0, 0, 0, 1], cfg)
    topo.transfer_time_s(0, 1, 1e9)     # explicit: 1e-6 + 1e9 / 10e9 = 0.100001 s
    topo.path(0, 2).hops                # (0, 2): default NVLink, same node
    topo.path(0, 4).kind                # 'network'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from kvsim.config.topology import TopologyConfig
from kvsim.errors import ConfigError

__all__ = ["HOST", "NetworkVariance", "PathInfo", "Topology", "node_ids"]

HOST: Final = -1
"""Pseudo GPU index of host memory (GPU <-> HOST paths use PCIe)."""

MAX_FW_ENTRIES: Final = 20_000_000
"""Cap on (distinct explicit bandwidths) x (GPUs named by links)^2, about 0.5 GB of tables."""

_GB: Final = 1e9
_US_PER_S: Final = 1e6
# Per-GPU port resources, in this order after the explicit links: resource id of port k of
# GPU g is num_explicit_links + _NUM_PORTS * g + k. Then two per rack: uplink, downlink.
_NV_TX, _NV_RX, _NET_TX, _NET_RX, _PCIE_D2H, _PCIE_H2D, _XR_TX, _XR_RX = range(8)
_NUM_PORTS: Final = 8
_PORT_NAMES: Final = (
    "nvlink-tx",
    "nvlink-rx",
    "net-tx",
    "net-rx",
    "pcie-d2h",
    "pcie-h2d",
    "cross-rack-tx",
    "cross-rack-rx",
)
_RACK_NAMES: Final = ("uplink", "downlink")


@dataclass(frozen=True, slots=True)
class NetworkVariance:
    """Per-transfer slowdown factors: ``F = J * T`` where ``J`` is lognormal with mean 1 and
    coefficient of variation ``cv`` (``J = 1`` when ``cv == 0``) and ``T`` is
    ``tail_multiplier`` with probability ``tail_probability``, else 1. So
    ``E[F] = 1 + p (m - 1)``; ``F >= 1`` is not guaranteed (jitter can also speed up).

    A transfer with factor ``F`` pays ``F * latency`` and flows at most at
    ``path bandwidth / F``: alone on its path it takes ``F`` times its nominal time.
    Draws come only from the Generator passed in (same seed -> same factors).
    """

    cv: float = 0.0
    tail_probability: float = 0.0
    tail_multiplier: float = 1.0

    @classmethod
    def from_config(cls, cfg: TopologyConfig) -> NetworkVariance:
        """The variance configured in ``cfg`` (``jitter_cv``, ``tail_*``)."""
        return cls(cfg.jitter_cv, cfg.tail_probability, cfg.tail_multiplier)

    @property
    def enabled(self) -> bool:
        """Whether any factor can differ from 1."""
        return self.cv > 0 or (self.tail_probability > 0 and self.tail_multiplier != 1)

    def factors(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` factors (float64). Draw order: all jitter values, then all tail coins,
        each only if that part is enabled."""
        out = np.ones(size, dtype=np.float64)
        if self.cv > 0:
            sigma2 = math.log1p(self.cv * self.cv)
            out = rng.lognormal(-0.5 * sigma2, math.sqrt(sigma2), size)
        if self.tail_probability > 0 and self.tail_multiplier != 1:
            out = np.where(
                rng.random(size) < self.tail_probability, out * self.tail_multiplier, out
            )
        return out

    def factor(self, rng: np.random.Generator) -> float:
        """One factor (same stream as ``factors(rng, 1)[0]``)."""
        return float(self.factors(rng, 1)[0])


@dataclass(frozen=True, slots=True)
class PathInfo:
    """The chosen path from one GPU to another.

    Invariants: ``hops[0]`` is the source and ``hops[-1]`` the destination (``(src,)`` when
    they are equal); ``bandwidth_bytes_per_s`` is the minimum over the crossed links (``inf``
    when ``links`` is empty); ``latency_s`` is the sum over the hops. ``kind`` is ``same``,
    ``explicit``, ``nvlink``, ``network`` (same rack), ``cross-rack``, ``pcie`` (GPU <-> host)
    or ``host-bounce`` (same
    node, but a GPU without NVLink: GPU -> host -> GPU over PCIe).
    """

    bandwidth_bytes_per_s: float
    latency_s: float
    hops: tuple[int, ...]
    links: tuple[int, ...]
    kind: str

    def transfer_time_s(self, nbytes: float) -> float:
        """Unshared transfer time: latency + nbytes / bandwidth (0 bytes -> latency only)."""
        if nbytes <= 0 or math.isinf(self.bandwidth_bytes_per_s):
            return self.latency_s
        return self.latency_s + nbytes / self.bandwidth_bytes_per_s


def node_ids(nodes: Sequence[int | None], gpus_per_node: int) -> list[int]:
    """Node of each GPU: the explicit ``nodes[g]`` if not None, else ``g // gpus_per_node``."""
    if gpus_per_node < 1:
        raise ConfigError("cluster.topology.gpus_per_node", "must be >= 1")
    return [g // gpus_per_node if n is None else int(n) for g, n in enumerate(nodes)]


@dataclass(slots=True)
class _Explicit:
    """Floyd–Warshall results over the GPUs named by explicit links (local indices)."""

    gpus: tuple[int, ...]  # local index -> GPU
    local: dict[int, int]  # GPU -> local index
    lat: np.ndarray  # [D, m, m] min latency (s) using links of bandwidth >= threshold d
    bw: np.ndarray  # [D, m, m] bottleneck bandwidth of that path (bytes/s)
    nxt: np.ndarray  # [D, m, m] next local hop on that path, -1 if none
    edge_rid: dict[tuple[int, int], int]  # (gpu_a, gpu_b) -> resource id


class Topology:
    """All-pairs best paths over ``n`` GPUs; see the module docstring for the model.

    Build with :meth:`build`. Queries are O(D) for pairs inside the explicit graph (D distinct
    explicit bandwidths, cached per pair) and O(1) otherwise. Immutable after building.
    """

    __slots__ = (
        "_candidates",
        "_cfg_lat",
        "_explicit",
        "_link_cap",
        "_link_desc",
        "_node_of",
        "_npr",
        "_nvlink",
        "_pcie",
        "_port_base",
        "_rack_base",
        "_uplink",
        "_xr",
        "num_gpus",
        "num_links",
        "num_racks",
        "variance",
    )

    def __init__(
        self,
        node_of: Sequence[int],
        cfg: TopologyConfig,
        nvlink: np.ndarray,
        pcie: np.ndarray,
        explicit: _Explicit | None,
        link_cap: list[float],
        link_desc: list[str],
    ) -> None:
        levels = cfg.level_figures()
        self.num_gpus = len(node_of)
        self._node_of = np.asarray(node_of, dtype=np.int64).tolist()
        self._npr = cfg.nodes_per_rack
        # (nvlink, pcie, network) latency, seconds
        self._cfg_lat = (levels["nvlink"][1], levels["pcie"][1], levels["network"][1])
        self._xr = levels["cross-rack"]
        self._uplink = (
            None if cfg.rack_uplink_gbytes_per_s is None else cfg.rack_uplink_gbytes_per_s * _GB
        )
        if self._uplink is not None or levels["network"][0] < self._xr[0]:
            # every cross-rack path crosses net ports (uniform) and the uplinks: a constant
            xr_bw = min(self._xr[0], levels["network"][0], self._uplink or math.inf)
            self._xr = (xr_bw, self._xr[1])
        self.variance = NetworkVariance.from_config(cfg)
        self._nvlink = nvlink
        self._pcie = pcie
        self._explicit = explicit
        self.num_racks = (max(self._node_of) // self._npr + 1) if self.num_gpus else 0
        if cfg.racks is not None and self.num_racks > cfg.racks:
            raise ConfigError(
                "cluster.topology.racks",
                f"{cfg.racks} racks of {cfg.gpus_per_rack} GPUs are too few: the cluster's "
                f"nodes need {self.num_racks}",
            )
        self._port_base = len(link_cap)
        self._rack_base = self._port_base + _NUM_PORTS * self.num_gpus
        net = levels["network"][0]
        xr = levels["cross-rack"][0]
        caps = list(link_cap)
        for g in range(self.num_gpus):
            nv, pc = float(nvlink[g]), float(pcie[g])
            caps.extend((nv, nv, net, net, pc, pc, xr, xr))
        uplink = math.inf if self._uplink is None else self._uplink
        caps.extend([uplink] * (2 * self.num_racks))
        self._link_cap = caps
        self._link_desc = list(link_desc)
        self.num_links = len(caps)
        self._candidates: dict[tuple[int, int], tuple[tuple[float, float, int], ...]] = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        node_of: Sequence[int],
        cfg: TopologyConfig,
        nvlink_bytes_per_s: Sequence[float] | None = None,
        pcie_bytes_per_s: Sequence[float] | None = None,
    ) -> Topology:
        """Build the topology of ``len(node_of)`` GPUs; ``node_of[g]`` is GPU g's node id.

        ``nvlink_bytes_per_s`` / ``pcie_bytes_per_s`` optionally give each GPU's own port
        bandwidth (bytes/s per direction, e.g. from its catalog GPUSpec, times its TP degree
        for a TP group); a same-node default path then runs at the min of the two ports, and a
        GPU with 0 NVLink bounces through host memory over PCIe. A level whose bandwidth the
        config sets explicitly (``nvlink_gbytes_per_s`` / ``pcie_gbytes_per_s`` in
        ``cfg.model_fields_set``) ignores the per-GPU values, so the engine may always pass
        catalog figures and a user's explicit number still wins. Without per-GPU values the
        config's figures (explicit or default) apply to every GPU.
        Raises :class:`ConfigError` (key ``cluster.topology.links[i].src``) for a link naming
        a GPU outside ``0 .. n-1``.
        """
        n = len(node_of)
        if "nvlink_gbytes_per_s" in cfg.model_fields_set:
            nvlink_bytes_per_s = None
        if "pcie_gbytes_per_s" in cfg.model_fields_set:
            pcie_bytes_per_s = None
        nvlink = _per_gpu(nvlink_bytes_per_s, n, cfg.nvlink_gbytes_per_s * _GB, "nvlink", True)
        pcie = _per_gpu(pcie_bytes_per_s, n, cfg.pcie_gbytes_per_s * _GB, "pcie", False)
        edges = _collect_edges(cfg, n)
        link_cap = [bw for (_a, _b), (bw, _lat) in edges.items()]
        link_desc = [f"link {a}->{b}" for (a, b) in edges]
        explicit = _floyd_warshall(edges) if edges else None
        return cls(node_of, cfg, nvlink, pcie, explicit, link_cap, link_desc)

    @classmethod
    def hierarchical(cls, cfg: TopologyConfig, num_gpus: int | None = None) -> Topology:
        """The cluster of ``racks x nodes_per_rack x gpus_per_node`` GPUs numbered rack by
        rack, node by node (GPU ``g`` on node ``g // gpus_per_node``); ``num_gpus`` defaults
        to ``cfg.num_gpus`` and needs ``racks`` otherwise. O(num_gpus) time and memory."""
        n = cfg.num_gpus if num_gpus is None else num_gpus
        if n is None:
            raise ConfigError("cluster.topology.racks", "set racks (or pass num_gpus)")
        return cls.build((np.arange(n, dtype=np.int64) // cfg.gpus_per_node).tolist(), cfg)

    # ------------------------------------------------------------------ queries

    def node_of(self, gpu: int) -> int:
        """Node id of ``gpu``."""
        return self._node_of[gpu]

    def rack_of(self, gpu: int) -> int:
        """Rack id of ``gpu`` (its node // ``nodes_per_rack``)."""
        return self._node_of[gpu] // self._npr

    def level(self, src: int, dst: int) -> str:
        """Default level between two GPUs: ``same``, ``nvlink`` (same node), ``network``
        (same rack) or ``cross-rack``; ignores explicit links."""
        if src == dst:
            return "same"
        a, b = self._node_of[src], self._node_of[dst]
        if a == b:
            return "nvlink"
        return "network" if a // self._npr == b // self._npr else "cross-rack"

    def link_capacity(self, link: int) -> float:
        """Capacity of shared resource ``link`` in bytes/s (one direction)."""
        return self._link_cap[link]

    def rack_uplink(self, rack: int) -> int:
        """Resource id of ``rack``'s uplink (its downlink is the id + 1)."""
        return self._rack_base + 2 * rack

    def describe_link(self, link: int) -> str:
        """Human-readable name of resource ``link`` (``link 0->1``, ``gpu3 nvlink-tx``,
        ``rack2 uplink``)."""
        if link < self._port_base:
            return self._link_desc[link]
        if link < self._rack_base:
            g, k = divmod(link - self._port_base, _NUM_PORTS)
            return f"gpu{g} {_PORT_NAMES[k]}"
        r, k = divmod(link - self._rack_base, 2)
        return f"rack{r} {_RACK_NAMES[k]}"

    def path(self, src: int, dst: int, nbytes: float | None = None) -> PathInfo:
        """Best path from ``src`` to ``dst`` for a message of ``nbytes`` bytes.

        ``nbytes=None`` returns the widest path (largest bottleneck, then lowest latency).
        Either endpoint may be :data:`HOST` (PCIe to/from the other one).
        """
        n = self.num_gpus
        if not (0 <= src < n and 0 <= dst < n):  # HOST, or out of range
            self._check(src)
            self._check(dst)
            if src == dst:
                return PathInfo(math.inf, 0.0, (src,), (), "same")
            return self._host_path(src, dst)
        if src == dst:
            return PathInfo(math.inf, 0.0, (src,), (), "same")
        if self._explicit is not None:
            cands = self._explicit_candidates(src, dst)
            if cands:
                return self._explicit_path(src, dst, _pick(cands, nbytes))
        return self._default_path(src, dst)

    def transfer_time_s(self, src: int, dst: int, nbytes: float) -> float:
        """Unshared time (s) to move ``nbytes`` from ``src`` to ``dst`` on the best path.

        Equals ``self.path(src, dst, nbytes).transfer_time_s(nbytes)``; 0 when src == dst.
        """
        if src == dst:
            return 0.0
        if src != HOST and dst != HOST:
            cands = self._explicit_candidates(src, dst)
            if cands:
                return min(lat + (nbytes / bw if nbytes > 0 else 0.0) for bw, lat, _ in cands)
        return self.path(src, dst).transfer_time_s(nbytes)

    # ------------------------------------------------------------------ internals

    def _check(self, gpu: int) -> None:
        if not (gpu == HOST or 0 <= gpu < self.num_gpus):
            raise IndexError(f"GPU {gpu} out of range 0..{self.num_gpus - 1} (or HOST)")

    def _port(self, gpu: int, port: int) -> int:
        return self._port_base + _NUM_PORTS * gpu + port

    def _host_path(self, src: int, dst: int) -> PathInfo:
        if dst == HOST:
            return PathInfo(
                float(self._pcie[src]),
                self._cfg_lat[1],
                (src, HOST),
                (self._port(src, _PCIE_D2H),),
                "pcie",
            )
        return PathInfo(
            float(self._pcie[dst]),
            self._cfg_lat[1],
            (HOST, dst),
            (self._port(dst, _PCIE_H2D),),
            "pcie",
        )

    def _default_path(self, src: int, dst: int) -> PathInfo:
        a, b = self._node_of[src], self._node_of[dst]
        if a != b:
            ra, rb = a // self._npr, b // self._npr
            if ra != rb:
                return self._cross_rack_path(src, dst, ra, rb)
            links = (self._port(src, _NET_TX), self._port(dst, _NET_RX))
            bw = min(self._link_cap[links[0]], self._link_cap[links[1]])
            return PathInfo(bw, self._cfg_lat[2], (src, dst), links, "network")
        if self._nvlink[src] > 0 and self._nvlink[dst] > 0:
            links = (self._port(src, _NV_TX), self._port(dst, _NV_RX))
            bw = float(min(self._nvlink[src], self._nvlink[dst]))
            return PathInfo(bw, self._cfg_lat[0], (src, dst), links, "nvlink")
        links = (self._port(src, _PCIE_D2H), self._port(dst, _PCIE_H2D))
        bw = float(min(self._pcie[src], self._pcie[dst]))
        return PathInfo(bw, 2 * self._cfg_lat[1], (src, HOST, dst), links, "host-bounce")

    def _cross_rack_path(self, src: int, dst: int, ra: int, rb: int) -> PathInfo:
        ps, pd = self._port_base + _NUM_PORTS * src, self._port_base + _NUM_PORTS * dst
        if self._uplink is None:
            links: tuple[int, ...] = (ps + _NET_TX, ps + _XR_TX, pd + _XR_RX, pd + _NET_RX)
        else:
            up, down = self._rack_base + 2 * ra, self._rack_base + 2 * rb + 1
            links = (ps + _NET_TX, ps + _XR_TX, up, down, pd + _XR_RX, pd + _NET_RX)
        return PathInfo(self._xr[0], self._xr[1], (src, dst), links, "cross-rack")

    def _explicit_candidates(self, src: int, dst: int) -> tuple[tuple[float, float, int], ...]:
        """Pareto (bandwidth desc, latency asc) candidates ``(bw, lat, threshold)``; cached."""
        ex = self._explicit
        if ex is None or src not in ex.local or dst not in ex.local:
            return ()
        key = (src, dst)
        cached = self._candidates.get(key)
        if cached is not None:
            return cached
        i, j = ex.local[src], ex.local[dst]
        out: list[tuple[float, float, int]] = []
        for d in range(ex.lat.shape[0]):  # thresholds in descending bandwidth
            lat = float(ex.lat[d, i, j])
            if math.isinf(lat) or (out and lat >= out[-1][1]):
                continue
            out.append((float(ex.bw[d, i, j]), lat, d))
        result = tuple(out)
        self._candidates[key] = result
        return result

    def _explicit_path(self, src: int, dst: int, d: int) -> PathInfo:
        ex = self._explicit
        assert ex is not None
        i, j = ex.local[src], ex.local[dst]
        hops = [src]
        links: list[int] = []
        cur = i
        while cur != j:
            nxt = int(ex.nxt[d, cur, j])
            links.append(ex.edge_rid[(ex.gpus[cur], ex.gpus[nxt])])
            hops.append(ex.gpus[nxt])
            cur = nxt
        return PathInfo(
            float(ex.bw[d, i, j]), float(ex.lat[d, i, j]), tuple(hops), tuple(links), "explicit"
        )


def _pick(cands: tuple[tuple[float, float, int], ...], nbytes: float | None) -> int:
    """Threshold index of the best candidate for ``nbytes`` (first = widest on ties)."""
    if nbytes is None:
        return cands[0][2]
    best = min(cands, key=lambda c: c[1] + (nbytes / c[0] if nbytes > 0 else 0.0))
    return best[2]


def _per_gpu(
    values: Sequence[float] | None, n: int, default: float, what: str, allow_zero: bool
) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{what}_bytes_per_s needs one value per GPU ({n}), got {arr.shape}")
    if (arr < 0).any() or (not allow_zero and (arr <= 0).any()) or not np.isfinite(arr).all():
        raise ValueError(f"{what}_bytes_per_s must be finite and {'>=' if allow_zero else '>'} 0")
    return arr


def _collect_edges(cfg: TopologyConfig, n: int) -> dict[tuple[int, int], tuple[float, float]]:
    """Directed edges ``(a, b) -> (bytes/s, latency s)``; the last declaration wins."""
    edges: dict[tuple[int, int], tuple[float, float]] = {}
    for k, link in enumerate(cfg.links):
        for field, gpu in (("src", link.src), ("dst", link.dst)):
            if gpu >= n:
                raise ConfigError(
                    f"cluster.topology.links[{k}].{field}",
                    f"GPU {gpu} does not exist; the cluster has {n} instances (0..{n - 1})",
                )
        fig = (link.bandwidth_gbytes_per_s * _GB, link.latency_us / _US_PER_S)
        pairs = [(link.src, link.dst)] + ([(link.dst, link.src)] if link.bidirectional else [])
        for pair in pairs:
            edges.pop(pair, None)  # re-insert so resource ids follow the last declaration
            edges[pair] = fig
    return edges


def _floyd_warshall(edges: dict[tuple[int, int], tuple[float, float]]) -> _Explicit:
    """Min-latency Floyd–Warshall per bandwidth threshold, with bottleneck and next hop."""
    gpus = tuple(sorted({g for pair in edges for g in pair}))
    local = {g: i for i, g in enumerate(gpus)}
    m = len(gpus)
    thresholds = sorted({bw for bw, _ in edges.values()}, reverse=True)
    num_t = len(thresholds)
    if num_t * m * m > MAX_FW_ENTRIES:
        raise ConfigError(
            "cluster.topology.links",
            f"{m} linked GPUs with {num_t} distinct bandwidths need {num_t} x {m}^2 path "
            f"entries (limit {MAX_FW_ENTRIES:,}); use fewer distinct bandwidth values or "
            "leave pairs to the per-level defaults",
        )
    lat = np.full((num_t, m, m), np.inf)
    bw = np.zeros((num_t, m, m))
    nxt = np.full((num_t, m, m), -1, dtype=np.int64)
    idx = np.arange(m)
    for d, t in enumerate(thresholds):
        L, B, N = lat[d], bw[d], nxt[d]
        L[idx, idx] = 0.0
        B[idx, idx] = np.inf
        N[idx, idx] = idx
        for (a, b), (e_bw, e_lat) in edges.items():
            if e_bw >= t:
                i, j = local[a], local[b]
                L[i, j], B[i, j], N[i, j] = e_lat, e_bw, j
        for k in range(m):
            via = L[:, k : k + 1] + L[k : k + 1, :]
            better = via < L
            if better.any():
                L[better] = via[better]
                B[better] = np.minimum(B[:, k : k + 1], B[k : k + 1, :])[better]
                N[better] = np.broadcast_to(N[:, k : k + 1], (m, m))[better]
    edge_rid = {pair: r for r, pair in enumerate(edges)}
    return _Explicit(gpus, local, lat, bw, nxt, edge_rid)
