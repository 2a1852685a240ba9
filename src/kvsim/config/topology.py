"""Pydantic schema of ``cluster.topology``: explicit GPU links and per-level defaults.

Units (one convention everywhere, the unit is in every field name):

* bandwidth: **gigabytes per second** (``*_gbytes_per_s``; 1 GB/s = 1e9 bytes/s, decimal, as
  vendors quote them), **per direction**. Vendors often quote the bidirectional total
  (NVLink 4 "900 GB/s" is 450 GB/s each way); divide such figures by two. Network links are
  usually quoted in gigabits (400 Gb/s InfiniBand NDR = 50 GB/s); divide by eight.
* latency: **microseconds** (``*_us``), paid once per transfer before its bytes flow.

GPU indices in links are *instance* indices (``gpu_index`` in the outputs: the order of
``cluster.instances`` after ``count`` expansion). How links and defaults combine into paths is
described in :mod:`kvsim.serving.topology` and ``docs/topology.md``.

Example (YAML)::

    cluster:
      topology:
        gpus_per_node: 2
        links:
          - {src: 0, dst: 1, bandwidth_gbytes_per_s: 450, latency_us: 2}
          - {src: 1, dst: 2, bandwidth_gbytes_per_s: 25, latency_us: 5, bidirectional: false}

Defaults and their public sources:

* NVLink 4 (H100 SXM): 900 GB/s bidirectional aggregate per GPU -> 450 GB/s per direction
  (https://www.nvidia.com/en-us/data-center/h100/).
* PCIe 5.0 x16: 32 GT/s x 16 lanes, 128b/130b -> ~63 GB/s per direction; 64 as in the GPU
  catalog (https://pcisig.com/specifications, PCIe 5.0 base specification).
* 400 Gb/s InfiniBand NDR (ConnectX-7, one NIC per GPU as in DGX H100) -> 50 GB/s per
  direction (https://www.nvidia.com/en-us/networking/infiniband/qm9700/).
* Cross-rack defaults equal the intra-rack (``network_*``) figures and the rack uplink is
  non-blocking (``rack_uplink_gbytes_per_s: null``), so a config that names no rack field
  behaves as before the hierarchy existed; a calibration profile sets real figures.
* Latencies are per-transfer setup costs including the software stack (copy-engine launch,
  RDMA post), order-of-magnitude figures, not wire latencies: NVLink 3 us, PCIe 5 us (a
  cudaMemcpyAsync launch is a few us), network 10 us (RDMA write + completion on NDR is a few
  us end to end; KV-transfer engines add software overhead). Override them for a study.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LinkSpec", "TopologyConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkSpec(_Strict):
    """One explicit link between two GPUs (instance indices).

    ``bidirectional`` (default) adds the same link in both directions; ``false`` adds only
    ``src -> dst``. When several links name the same ordered pair, the **last one wins**, so a
    bidirectional link followed by a one-way override models an asymmetric link (the slower
    direction is honoured, never replaced by a faster default).
    """

    src: int = Field(ge=0, description="source GPU (instance index)")
    dst: int = Field(ge=0, description="destination GPU (instance index)")
    bandwidth_gbytes_per_s: float = Field(gt=0, description="GB/s (1e9 B/s) per direction")
    latency_us: float = Field(0.0, ge=0, description="per-transfer latency, microseconds")
    bidirectional: bool = Field(True, description="also add dst -> src with the same figures")

    @model_validator(mode="after")
    def _check(self) -> LinkSpec:
        if self.src == self.dst:
            raise ValueError(f"a link joins two different GPUs (src = dst = {self.src})")
        return self


class TopologyConfig(_Strict):
    """Explicit links plus the defaults used for every pair without an explicit path.

    Hierarchy: GPU ``g`` is on node ``cluster.instances[g].node`` if set, else
    ``g // gpus_per_node``; node ``v`` is in rack ``v // nodes_per_rack``. Pairs on the same
    node default to NVLink, pairs on different nodes of one rack to the (intra-rack) network
    ``network_*``, pairs in different racks to ``cross_rack_*`` (``null``: the ``network_*``
    figure); GPU <-> host transfers (swap) use PCIe. Bandwidths are GB/s per direction,
    latencies us. ``racks`` (optional) is the size of a generated cluster
    (``racks * nodes_per_rack * gpus_per_node`` GPUs; 160 x 8 x 8 = 10,240 in the cluster
    presets); when set, a cluster needing more racks is a ConfigError.

    ``rack_uplink_gbytes_per_s`` (``null`` = non-blocking) is the capacity of each rack's
    uplink to the spine, per direction, shared max-min fairly by every cross-rack transfer
    leaving (or entering) the rack: it carries ``uplink / per-flow bandwidth`` concurrent
    flows at full speed before they slow down.

    Network variance (off by default): every transfer's time is multiplied by a factor drawn
    per transfer from a lognormal of mean 1 and coefficient of variation ``jitter_cv``, and
    with probability ``tail_probability`` also by ``tail_multiplier`` (a rare slow transfer).
    """

    links: list[LinkSpec] = Field(default_factory=list)
    gpus_per_node: int = Field(8, ge=1, description="GPUs per node when an instance has no node")
    nvlink_gbytes_per_s: float = Field(450.0, gt=0, description="same-node GPU<->GPU, GB/s")
    nvlink_latency_us: float = Field(3.0, ge=0)
    pcie_gbytes_per_s: float = Field(64.0, gt=0, description="GPU<->host, GB/s per direction")
    pcie_latency_us: float = Field(5.0, ge=0)
    network_gbytes_per_s: float = Field(50.0, gt=0, description="cross-node GPU<->GPU, GB/s")
    network_latency_us: float = Field(10.0, ge=0)
    racks: int | None = Field(None, ge=1, description="racks of a generated cluster (or null)")
    nodes_per_rack: int = Field(8, ge=1, description="nodes per rack (8 x 8 GPUs = 64)")
    cross_rack_gbytes_per_s: float | None = Field(
        None, gt=0, description="GPU<->GPU in different racks, GB/s (null: network_gbytes_per_s)"
    )
    cross_rack_latency_us: float | None = Field(
        None, ge=0, description="cross-rack latency, us (null: network_latency_us)"
    )
    rack_uplink_gbytes_per_s: float | None = Field(
        None, gt=0, description="each rack's spine uplink per direction, GB/s (null: no limit)"
    )
    jitter_cv: float = Field(0.0, ge=0, description="lognormal transfer-time CV (0: off)")
    tail_probability: float = Field(0.0, ge=0, le=1, description="chance of a slow transfer")
    tail_multiplier: float = Field(1.0, ge=1, description="time factor of a slow transfer")

    @property
    def gpus_per_rack(self) -> int:
        """GPUs in one rack (``nodes_per_rack * gpus_per_node``)."""
        return self.nodes_per_rack * self.gpus_per_node

    @property
    def num_gpus(self) -> int | None:
        """GPUs of the generated cluster (``racks * gpus_per_rack``), None without ``racks``."""
        return None if self.racks is None else self.racks * self.gpus_per_rack

    def level_figures(self) -> dict[str, tuple[float, float]]:
        """``level -> (bytes/s, seconds)`` of the default levels: ``nvlink``, ``network``
        (intra-rack), ``cross-rack``, ``pcie``. Cross-rack ``null`` fields fall back to
        the network figures."""
        xr_bw = self.cross_rack_gbytes_per_s or self.network_gbytes_per_s
        xr_lat = (
            self.network_latency_us
            if self.cross_rack_latency_us is None
            else self.cross_rack_latency_us
        )
        return {
            "nvlink": (self.nvlink_gbytes_per_s * 1e9, self.nvlink_latency_us / 1e6),
            "network": (self.network_gbytes_per_s * 1e9, self.network_latency_us / 1e6),
            "cross-rack": (xr_bw * 1e9, xr_lat / 1e6),
            "pcie": (self.pcie_gbytes_per_s * 1e9, self.pcie_latency_us / 1e6),
        }
