"""Memory tiers below an instance's HBM (DRAM, SSD, pool): offload target and prefix source.

The HBM level is the instance's own prefix cache (:class:`~kvsim.kv.block_pool.BlockPool` or
the radix index); :class:`LowerTiers` is everything below it, built from the same pieces as
``kvsim cache``: :class:`~kvsim.kv.tiers.Tier` (capacity, transfer figures, its own eviction
policy from :mod:`kvsim.kv.policies`, :class:`~kvsim.kv.tiers.TierCounters`) and the tier
defaults of :mod:`kvsim.cache.config`.

Semantics (one block = one prefix-chained hash; tiers top first):

* :meth:`LowerTiers.demote` -- blocks that left HBM (their last HBM holder was reused) go into
  the first lower tier. Room is made by that tier's policy; each victim is demoted one tier
  further (its write counted there), a victim of the last tier is dropped. ``inclusive``: a
  block already resident below is only refreshed (no write). Writes are off the critical path:
  counted (``demotions``, ``bytes_written``, ``write_time_s``), never waited for.
* :meth:`LowerTiers.match` -- prefix lookup across HBM and the lower tiers (read-only): block
  ``i`` hits iff every block before it hit, in HBM or in some lower tier.
* :meth:`LowerTiers.load` -- the admitted request loads that run into HBM: per tier with hits,
  one transfer ``hits * block_bytes / read_bw + latency`` (:meth:`Tier.read_time`); the sum is
  the request's ``load_time_s``, on its critical path. Exclusive tiers give the block up
  (it now lives in HBM), inclusive ones keep their copy.
* :meth:`LowerTiers.write_through` -- ``write_through``: computed blocks are copied into every
  lower tier at once (their writes counted).

Time: the policies see a logical clock (one tick per operation), not simulated seconds, so
fast-forward and exact stepping (which apply the same operations in the same order, at
different wall points of a span) give identical tier states.

Invariants: ``tier.used <= tier.capacity`` after every operation; exclusive => a hash is in
at most one lower tier; ``sum(hits_per_tier)`` == blocks loaded at first admissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kvsim.errors import ConfigError
from kvsim.kv.block_pool import BlockPool, KVBlock
from kvsim.kv.tiers import Tier, TierSpec

if TYPE_CHECKING:
    from kvsim.config.schema import CacheConfig, EngineTierConfig

__all__ = ["LowerTiers", "build_lower_tiers"]


class LowerTiers:
    """The tiers below HBM of one instance; see the module doc for semantics and invariants."""

    __slots__ = (
        "_clock",
        "_resident",
        "_write_s",
        "block_bytes",
        "inclusive",
        "load_time_s",
        "num_loaded_blocks",
        "num_loads",
        "tiers",
        "write_through_on",
    )

    def __init__(
        self,
        tiers: Sequence[Tier],
        block_bytes: float,
        *,
        inclusive: bool = False,
        write_through: bool = False,
    ) -> None:
        if not tiers:
            raise ConfigError("cache.tiers", "LowerTiers needs at least one tier")
        if write_through and not inclusive:
            raise ConfigError("cache.write_policy", "write_through needs inclusive: true")
        self.tiers = list(tiers)
        self.block_bytes = float(block_bytes)
        self.inclusive = inclusive
        self.write_through_on = write_through
        self._write_s = [t.write_time(self.block_bytes) for t in self.tiers]
        self._clock = 0.0
        #: hash -> number of lower tiers holding it (fast prefix walks; kept by every change)
        self._resident: dict[int, int] = {}
        self.num_loads = 0  # admissions that loaded at least one block
        self.num_loaded_blocks = 0
        self.load_time_s = 0.0  # summed over loads (critical-path seconds)

    def _tick(self) -> float:
        self._clock += 1.0
        return self._clock

    # ------------------------------------------------------------------ offload
    def demote(self, hashes: Sequence[int]) -> None:
        """Blocks evicted from HBM, in eviction order, go into the first lower tier
        (exclusive: a stale copy further down moves up instead of staying twice)."""
        lower = self.tiers[1:] if not self.inclusive else ()
        for h in hashes:
            if h in self._resident:
                for tier in lower:
                    if h in tier.policy:
                        tier.policy.on_remove(h)
                        self._drop(h)
                        break
            self._put(0, h, self._tick())

    def write_through(self, hashes: Sequence[int]) -> None:
        """Copy computed blocks into every lower tier lacking them (``write_through``)."""
        for h in hashes:
            now = self._tick()
            for level, tier in enumerate(self.tiers):
                if h in tier.policy:
                    tier.policy.on_access(h, now)
                else:
                    self._put(level, h, now)

    def _put(self, level: int, key: int, now: float) -> None:
        """Write ``key`` into tier ``level``, counted as a demotion; the tier's victim (one:
        every key is one block) cascades one tier down, a victim of the last tier is dropped.
        A key already resident there is only refreshed."""
        tiers = self.tiers
        last = len(tiers) - 1
        res = self._resident
        while True:
            tier = tiers[level]
            pol = tier.policy
            if key in pol:
                pol.on_access(key, now)
                return
            victim: int | None = None
            if pol.used >= tier.capacity:
                out = pol.evict(key)
                if out is None:
                    return
                assert isinstance(out, int)
                victim = out
                tier.counters.evictions += 1
                self._drop(victim)
            pol.on_insert(key, 1, now)
            res[key] = res.get(key, 0) + 1
            c = tier.counters
            c.inserts += 1
            c.demotions += 1
            c.bytes_written += self.block_bytes
            c.write_time_s += self._write_s[level]
            if victim is None or level == last:
                return
            key = victim
            level += 1

    def _drop(self, key: int) -> None:
        """One lower tier gave ``key`` up."""
        res = self._resident
        c = res[key] - 1
        if c:
            res[key] = c
        else:
            del res[key]

    # ------------------------------------------------------------------ load back
    def match(
        self, pool: BlockPool, hashes: Sequence[int]
    ) -> tuple[list[KVBlock | None], list[KVBlock], list[int]]:
        """Prefix match across HBM and the lower tiers (no change): block ``i`` hits iff every
        block before it hit, served by HBM if ``pool`` holds it, else by a lower tier.
        Returns the run (an HBM block, or None for a lower-tier block), its HBM blocks and
        the hashes to load, both in prefix order."""
        get = pool.cached_hash_to_block.get
        resident = self._resident
        run: list[KVBlock | None] = []
        hits: list[KVBlock] = []
        loads: list[int] = []
        for h in hashes:
            block = get(h)
            if block is not None:
                run.append(block)
                hits.append(block)
            elif h in resident:
                run.append(None)
                loads.append(h)
            else:
                break
        return run, hits, loads

    def peek(self, hashes: Sequence[int]) -> int:
        """Length of the leading run of ``hashes`` resident in some lower tier (no change)."""
        resident = self._resident
        n = 0
        for h in hashes:
            if h not in resident:
                return n
            n += 1
        return n

    def load(self, hashes: Sequence[int]) -> tuple[float, list[int]]:
        """Load ``hashes`` (all resident below: check :meth:`peek`) into HBM. Returns the
        critical-path seconds and the blocks served per tier (topmost copy)."""
        per_tier = [0] * len(self.tiers)
        if not hashes:
            return 0.0, per_tier
        now = self._tick()
        tiers = self.tiers
        for h in hashes:
            for k, tier in enumerate(tiers):
                pol = tier.policy
                if h in pol:
                    per_tier[k] += 1
                    if self.inclusive:
                        pol.on_access(h, now)
                    else:
                        pol.on_remove(h)
                        self._drop(h)
                    tier.counters.hits += 1
                    break
            else:
                raise ConfigError("cache.tiers", f"block {h} is in no lower tier")
        load_s = 0.0
        for k, n in enumerate(per_tier):
            if n:
                tier = tiers[k]
                nbytes = n * self.block_bytes
                t_s = tier.read_time(nbytes)
                load_s += t_s
                c = tier.counters
                c.promotions += n
                c.bytes_read += nbytes
                c.read_time_s += t_s
        self.num_loads += 1
        self.num_loaded_blocks += len(hashes)
        self.load_time_s += load_s
        return load_s, per_tier

    # ------------------------------------------------------------------ reporting
    def names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def used_blocks(self) -> list[int]:
        """Resident blocks per lower tier, top first."""
        return [t.policy.used for t in self.tiers]

    def describe(self) -> list[dict[str, object]]:
        """Per tier: name, capacity, policy and transfer figures (for run_meta)."""
        out: list[dict[str, object]] = []
        for t in self.tiers:
            s = t.spec
            out.append(
                {
                    "name": s.name,
                    "capacity_blocks": s.capacity_blocks,
                    "policy": s.policy,
                    "read_bandwidth_bytes_per_s": s.read_bandwidth_bytes_per_s,
                    "write_bandwidth_bytes_per_s": s.write_bandwidth_bytes_per_s,
                    "latency_s": s.latency_s,
                }
            )
        return out

    def check_invariants(self) -> None:
        """Raise :class:`SimulationError` if a tier is over capacity."""
        from kvsim.errors import SimulationError

        for t in self.tiers:
            if t.policy.used > t.capacity:
                raise SimulationError(f"tier {t.name} holds {t.policy.used} > {t.capacity}")
        if sum(self._resident.values()) != sum(t.policy.used for t in self.tiers):
            raise SimulationError("lower tiers: residency index out of step with the tiers")
        if not self.inclusive and any(c > 1 for c in self._resident.values()):
            raise SimulationError("exclusive lower tiers hold a block twice")


def build_lower_tiers(
    cache: CacheConfig,
    *,
    block_size: int,
    kv_bytes_per_token: float,
    host_link_bytes_per_s: float,
) -> LowerTiers | None:
    """The lower tiers of ``cache.tiers`` for one instance, or None if there are none."""
    if not cache.tiers or not cache.prefix_caching:
        return None
    tiers = [
        Tier(_spec(t, i, block_size, kv_bytes_per_token, host_link_bytes_per_s))
        for i, t in enumerate(cache.tiers)
    ]
    return LowerTiers(
        tiers,
        block_size * kv_bytes_per_token,
        inclusive=cache.inclusive,
        write_through=cache.write_policy == "write_through",
    )


def _spec(
    t: EngineTierConfig, i: int, block_size: int, kv_bytes_per_token: float, host_bw: float
) -> TierSpec:
    from kvsim.cache.config import TIER_DEFAULTS
    from kvsim.kv.tiers import parse_capacity

    where = f"cache.tiers[{i}]"
    read, write, lat = TIER_DEFAULTS.get(t.name, (0.0, 0.0, 0.0))
    read = t.read_bandwidth_bytes_per_s or (host_bw if read is None else read)
    write = t.write_bandwidth_bytes_per_s or (host_bw if write is None else write)
    if t.latency_us is not None:
        lat = t.latency_us * 1e-6
    if not read or not write:
        raise ConfigError(
            where,
            f"no default transfer figures for {t.name!r} (known: dram, ssd, pool); set "
            "read_bandwidth_bytes_per_s and write_bandwidth_bytes_per_s",
        )
    blocks = parse_capacity(t.capacity).to_blocks(
        block_size=block_size,
        kv_bytes_per_token=kv_bytes_per_token,
        unique_blocks=0,
        where=f"{where}.capacity",
    )
    return TierSpec(
        name=t.name,
        capacity_blocks=blocks,
        policy=t.policy,
        policy_params=dict(t.policy_params),
        read_bandwidth_bytes_per_s=read,
        write_bandwidth_bytes_per_s=write,
        latency_s=lat,
    )
