"""A stack of memory tiers, top (HBM) first: HBM -> DRAM -> SSD -> shared pool.

The API is built for both drivers (the ``kvsim cache`` replay and, later, the serving engine)::

    res = stack.lookup(hashes, now)          # hit prefix, per-tier hits, load time; promotes
    stack.insert(hashes[res.num_hit:], now, first_depth=res.num_hit + 1)  # computed blocks
    stack.prefetch(session_hashes, now)      # bring blocks up from lower tiers ahead of use

Keys are prefix-chained block hashes, one block each. ``now`` is a logical time (seconds)
that must not decrease. Per access the work is O(L) membership tests plus the policies'
O(1) / O(log n) operations (L = number of tiers, at most a handful): no scans.

**Lookup (prefix semantics).** Block ``i`` hits iff every block before it hit; the walk stops
at the first block resident in no tier. Each hit is served by its topmost copy. The hits are
decided on the state at the start of the lookup (phase 1, read-only), then applied (phase 2):
first every top-tier hit is an ``on_access`` (in prefix order), then every hit in a tier
``k > 0`` is a *promotion* (in prefix order): the block is
moved (exclusive) or copied (inclusive, or from a shared tier) into the top tier, paying
``read`` time of tier ``k``. ``load_time_s`` sums, over the tiers ``k > 0`` with hits, one
transfer of all their hit blocks: ``hits_k * block_bytes / read_bw_k + latency_k`` (plus the
tier's network path, :class:`~kvsim.kv.tiers.tier.TierSpec`).

**Remote pools.** With ``remote`` (a :class:`~kvsim.kv.tiers.remote.RemotePools`), a block
that no local tier holds is looked up in the other racks' pools before the walk stops; such
a *remote hit* is copied into the top tier (after the promotions, in prefix order), counted in
``num_remote_hits`` / ``LookupResult.num_remote_hit`` and in the serving pool's
``remote_hits``, and its blocks cost one cross-rack transfer per lookup.

**Insert (computed blocks).** A block goes into the top tier; ``write_through`` also writes a
copy into every lower tier that lacks one. Room is made by the tier's policy: each victim is
*demoted* one tier down (paying that tier's write time, off the critical path), which may evict
there in turn; a victim of the last tier is dropped. ``write_back`` writes a lower tier only by
demotion; ``selective`` is write-back that demotes only blocks with prefix depth ``<= max_depth``
(depth 1 = a prompt's first block) or at least ``min_hits`` hits since entering the stack,
and drops the others.

**Stacking.** ``exclusive``: a block is resident in at most one private tier (promotion
moves, demotion moves). ``inclusive``: copies are allowed (promotion copies, the lower copy
stays; demoting a block that the tier below already holds writes nothing). A ``shared`` tier
(one object in several stacks) always keeps its copy on promotion.

**Prefetch.** ``prefetch(hashes)`` walks the blocks in order until the first one resident
nowhere, and brings each one found below the top tier up to it (counted per source tier in
``prefetches``; one transfer per source tier, :attr:`TierStack.last_prefetch_time_s`; the
caller decides whether a request waits for it). A prefetched block is *used* when a
lookup hits it in the top tier, *wasted* if it leaves the top tier first; blocks still
pending at the end are reported by :attr:`TierStack.num_prefetch_pending`.

Invariants (tests check them after every operation): ``tier.used <= tier.capacity`` for every
tier; exclusive => every block is in at most one private tier; ``num_hits + num_misses ==
num_accesses``; per tier ``hits + misses`` of tier ``k + 1`` == ``misses`` of tier ``k``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.tiers.remote import RemotePools
from kvsim.kv.tiers.tier import Tier

__all__ = ["LookupResult", "TierStack", "WritePolicy"]

WritePolicy = Literal["write_back", "write_through", "selective"]
_WRITE_POLICIES: tuple[str, ...] = ("write_back", "write_through", "selective")


@dataclass(frozen=True, slots=True)
class LookupResult:
    """Outcome of one :meth:`TierStack.lookup`: ``num_hit`` leading blocks hit,
    ``hits_per_tier[k]`` of them served by tier ``k``, ``load_time_s`` to load those below the
    top tier, ``num_blocks`` looked up, ``num_remote_hit`` of them read from another rack's
    pool. ``sum(hits_per_tier) + num_remote_hit == num_hit <= num_blocks``."""

    num_hit: int
    hits_per_tier: tuple[int, ...]
    load_time_s: float
    num_blocks: int
    num_remote_hit: int = 0


class TierStack:
    """Tiers ``tiers[0]`` (top) .. ``tiers[-1]`` (last); see the module doc for semantics.

    Args:
        tiers: the tiers, top first; only non-top tiers may be ``shared``.
        block_bytes: KV bytes of one block (``block_size * kv_bytes_per_token``).
        inclusive: copies allowed across tiers (else exclusive).
        write_policy: ``write_back``, ``write_through`` (needs ``inclusive``) or ``selective``.
        max_depth / min_hits: the ``selective`` criteria (at least one must be set).
        remote: other racks' pools to read a locally missing block from (module doc).
        network_jitter: draws one network variance factor per load (lookup or prefetch) from
            a networked tier or the remote pools; ``None``: no variance. Writes (demotions)
            are off the critical path and never vary.
    """

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        block_bytes: float,
        inclusive: bool = False,
        write_policy: WritePolicy = "write_back",
        max_depth: int | None = None,
        min_hits: int | None = None,
        remote: RemotePools | None = None,
        network_jitter: Callable[[], float] | None = None,
    ) -> None:
        if not tiers:
            raise ConfigError("tiers", "a tier stack needs at least one tier")
        if tiers[0].spec.shared:
            raise ConfigError("tiers[0].shared", "the top tier cannot be shared")
        if write_policy not in _WRITE_POLICIES:
            raise ConfigError(
                "write_policy", f"unknown {write_policy!r}; allowed: {', '.join(_WRITE_POLICIES)}"
            )
        if write_policy == "write_through" and not inclusive and len(tiers) > 1:
            raise ConfigError(
                "write_policy", "write_through keeps copies in every tier: it needs inclusive"
            )
        if write_policy == "selective" and max_depth is None and min_hits is None:
            raise ConfigError("selective", "set max_depth and/or min_hits")
        self.tiers: list[Tier] = list(tiers)
        self.block_bytes = float(block_bytes)
        self.inclusive = inclusive
        self.write_policy = write_policy
        self.max_depth = max_depth
        self.min_hits = min_hits
        self.remote = remote
        self._jitter = network_jitter
        self.num_remote_hits = 0
        self._selective = write_policy == "selective"
        self._through = write_policy == "write_through"
        #: [depth, hits] per block in the stack (only with ``selective``).
        self._meta: dict[Hashable, list[int]] | None = {} if self._selective else None
        #: Last announced next use per block (only if some tier's policy needs it).
        self._nu: dict[Hashable, int] | None = (
            {} if any(t.needs_next_use for t in self.tiers) else None
        )
        self._prefetched: set[Hashable] = set()
        #: Keys being inserted while their tier makes room (innermost last).
        self._inflight: list[Hashable] = []
        #: Copies possible (inclusive, or a shared tier): then residency must be checked.
        self._copies = inclusive or any(t.spec.shared for t in self.tiers)
        self._block_write_s = [t.write_time(self.block_bytes) for t in self.tiers]
        self.num_lookups = 0
        self.num_accesses = 0
        self.num_hits = 0
        self.num_misses = 0
        self.num_inserted = 0
        self.num_dropped = 0
        self.num_prefetch_issued = 0
        self.num_prefetch_used = 0
        self.num_prefetch_wasted = 0
        #: Transfer seconds of the last :meth:`prefetch` (one transfer per source tier).
        self.last_prefetch_time_s = 0.0

    # ------------------------------------------------------------------ queries

    def locate(self, key: Hashable) -> int:
        """Index of the topmost tier holding ``key``, or -1."""
        for k, tier in enumerate(self.tiers):
            if key in tier.policy:
                return k
        return -1

    def peek_prefix(self, hashes: Sequence[Hashable], num_tiers: int | None = None) -> int:
        """Length of the leading run of ``hashes`` resident in the top ``num_tiers`` tiers
        (all if ``None``). Read-only: changes no policy state and no counter."""
        pols = [t.policy for t in self.tiers[: num_tiers or len(self.tiers)]]
        n = 0
        for key in hashes:
            for pol in pols:
                if key in pol:
                    break
            else:
                return n
            n += 1
        return n

    @property
    def num_prefetch_pending(self) -> int:
        """Prefetched blocks still in the top tier, neither used nor wasted yet."""
        return len(self._prefetched)

    def used_blocks(self) -> list[int]:
        """Resident blocks per tier, top first."""
        return [t.policy.used for t in self.tiers]

    # ------------------------------------------------------------------ lookup

    def lookup(
        self, hashes: Sequence[Hashable], now: float, next_use: Sequence[int] | None = None
    ) -> LookupResult:
        """Match the leading resident blocks of ``hashes`` and promote them (module doc).

        ``next_use[i]`` (required if a tier's policy needs it) is the next-use index announced
        with block ``i``.
        """
        tiers = self.tiers
        found: list[int] = []
        remote = self.remote
        remote_at: dict[int, Tier] = {}
        for key in hashes:
            for k, tier in enumerate(tiers):
                if key in tier.policy:
                    found.append(k)
                    break
            else:
                src = remote.find(key) if remote is not None else None
                if src is None:
                    break
                remote_at[len(found)] = src
                found.append(-1)
        n_hit = len(found)
        n = len(hashes)
        per_tier = [0] * len(tiers)
        for k in found:
            if k >= 0:
                per_tier[k] += 1
        self._count_lookup(n, n_hit, per_tier)
        load_s = self._remote_load(remote_at) if remote_at else 0.0
        for k in range(1, len(tiers)):
            if per_tier[k]:
                tier = tiers[k]
                nbytes = per_tier[k] * self.block_bytes
                t_s = self._read_time(tier, nbytes)
                load_s += t_s
                c = tier.counters
                c.promotions += per_tier[k]
                c.bytes_read += nbytes
                c.read_time_s += t_s
        # top-tier hits first (they become most recent), then the promotions
        for top_pass in (True, False):
            for i, k in enumerate(found):
                if (k == 0) is top_pass:
                    nu = next_use[i] if next_use is not None else None
                    if k < 0:
                        remote_at[i].policy.on_access(hashes[i], now, next_use=nu)
                    self._touch_hit(hashes[i], i + 1, now, nu)
        return LookupResult(n_hit, tuple(per_tier), load_s, n, len(remote_at))

    def _read_time(self, tier: Tier, nbytes: float) -> float:
        """One load of ``nbytes`` out of ``tier``, with a variance factor if it is networked."""
        if self._jitter is not None and tier.networked:
            return tier.read_time(nbytes, self._jitter())
        return tier.read_time(nbytes)

    def _remote_load(self, remote_at: dict[int, Tier]) -> float:
        """Count remote hits on their pools; one cross-rack transfer for all of them."""
        assert self.remote is not None
        nbytes = len(remote_at) * self.block_bytes
        t_s = self.remote.read_time(nbytes, self._jitter() if self._jitter else 1.0)
        for tier in remote_at.values():
            c = tier.counters
            c.remote_hits += 1
            c.bytes_read += self.block_bytes
            c.read_time_s += t_s / len(remote_at)
        self.num_remote_hits += len(remote_at)
        return t_s

    def _count_lookup(self, n: int, n_hit: int, per_tier: list[int]) -> None:
        self.num_lookups += 1
        self.num_accesses += n
        self.num_hits += n_hit
        self.num_misses += n - n_hit
        reaching = n_hit + (1 if n_hit < n else 0)
        for k, tier in enumerate(self.tiers):
            c = tier.counters
            c.hits += per_tier[k]
            reaching -= per_tier[k]
            c.misses += reaching

    def _touch_hit(self, key: Hashable, depth: int, now: float, nu: int | None) -> None:
        """Phase 2 of a lookup for one hit block: access it in the top tier, promoting it
        from where it is now (an earlier promotion of this lookup may have moved it)."""
        if self._nu is not None and nu is not None:
            self._nu[key] = nu
        if self._meta is not None:
            meta = self._meta.get(key)
            if meta is None:
                self._meta[key] = [depth, 1]
            else:
                meta[1] += 1
        top = self.tiers[0].policy
        if key in top:
            top.on_access(key, now, next_use=nu)
            if key in self._prefetched:
                self._prefetched.discard(key)
                self.num_prefetch_used += 1
            return
        self._raise_to_top(key, self.locate(key), now, nu)

    def _raise_to_top(self, key: Hashable, k: int, now: float, nu: int | None) -> None:
        """Put ``key`` (not in the top tier; in tier ``k``, or nowhere if -1) into the top
        tier: moved out of a private tier when exclusive, copied otherwise."""
        if k > 0:
            tier = self.tiers[k]
            if self.inclusive or tier.spec.shared:
                tier.policy.on_access(key, now, next_use=nu)
            else:
                tier.policy.on_remove(key)
        self._insert_at(0, key, now, nu)

    # ------------------------------------------------------------------ insert

    def insert(
        self,
        hashes: Sequence[Hashable],
        now: float,
        *,
        first_depth: int = 1,
        next_use: Sequence[int] | None = None,
    ) -> int:
        """Insert computed blocks (``hashes[j]`` has prefix depth ``first_depth + j``) into the
        top tier (and every lower tier with ``write_through``). A block already resident is
        refreshed in the top tier instead. Returns the number of blocks newly written to the
        top tier."""
        top = self.tiers[0].policy
        nus, meta, lower = self._nu, self._meta, len(self.tiers) > 1
        written = 0
        for j, key in enumerate(hashes):
            nu = next_use[j] if next_use is not None else None
            if nus is not None and nu is not None:
                nus[key] = nu
            if meta is not None and key not in meta:
                meta[key] = [first_depth + j, 0]
            if key in top:
                top.on_access(key, now, next_use=nu)
                continue
            if lower:
                self._raise_to_top(key, self.locate(key), now, nu)
            else:
                self._insert_at(0, key, now, nu)
            written += 1
            if self._through:
                self._write_through(key, now, nu)
        self.num_inserted += written
        return written

    def _write_through(self, key: Hashable, now: float, nu: int | None) -> None:
        for level in range(1, len(self.tiers)):
            tier = self.tiers[level]
            if key not in tier.policy and self._insert_at(level, key, now, nu):
                c = tier.counters
                c.bytes_written += self.block_bytes
                c.write_time_s += self._block_write_s[level]

    def _insert_at(self, level: int, key: Hashable, now: float, nu: int | None) -> bool:
        """Make room in tier ``level`` (demoting victims) and insert ``key``; False if the
        policy has nothing evictable (the key is then not inserted)."""
        tier = self.tiers[level]
        pol = tier.policy
        if pol.used >= tier.capacity:
            # While victims cascade down, ``key`` is in flight: with copies, its old copy may
            # be evicted from a lower tier meanwhile, and must not make us forget its metadata.
            inflight = self._inflight
            inflight.append(key)
            while pol.used >= tier.capacity:
                victim = pol.evict(key)
                if victim is None:
                    inflight.pop()
                    return False
                tier.counters.evictions += 1
                self._evicted(victim, level, now)
            inflight.pop()
        pol.on_insert(key, 1, now, next_use=nu)
        tier.counters.inserts += 1
        return True

    def _evicted(self, key: Hashable, level: int, now: float) -> None:
        """``key`` was evicted from tier ``level``: demote it one tier down, or drop it."""
        if self._prefetched and level == 0 and key in self._prefetched:
            self._prefetched.discard(key)
            self.num_prefetch_wasted += 1
        nxt = level + 1
        if nxt >= len(self.tiers) or (self._selective and not self._qualifies(key)):
            self._maybe_forget(key)
            return
        lower = self.tiers[nxt]
        if self._copies and key in lower.policy:  # a copy is already there: no write
            return
        nu = self._nu.get(key) if self._nu is not None else None
        if self._insert_at(nxt, key, now, nu):
            c = lower.counters
            c.demotions += 1
            c.bytes_written += self.block_bytes
            c.write_time_s += self._block_write_s[nxt]
        else:
            self._maybe_forget(key)

    def _qualifies(self, key: Hashable) -> bool:
        assert self._meta is not None
        meta = self._meta.get(key)
        if meta is None:
            return False
        return (self.max_depth is not None and meta[0] <= self.max_depth) or (
            self.min_hits is not None and meta[1] >= self.min_hits
        )

    def _maybe_forget(self, key: Hashable) -> None:
        """``key`` left a tier for good: drop its metadata once no tier holds it."""
        if self._copies and (self.locate(key) >= 0 or key in self._inflight):
            return
        self.num_dropped += 1
        if self._meta is not None:
            self._meta.pop(key, None)
        if self._nu is not None:
            self._nu.pop(key, None)

    # ------------------------------------------------------------------ prefetch

    def prefetch(
        self, hashes: Sequence[Hashable], now: float, next_use: Sequence[int] | None = None
    ) -> int:
        """Bring the leading resident blocks of ``hashes`` up to the top tier (module doc).

        Each source tier is charged one transfer of all its blocks (like a lookup's load);
        :attr:`last_prefetch_time_s` is the sum over source tiers. Returns the number of
        blocks moved or copied up (the prefetches issued).
        """
        issued = 0
        per_tier = [0] * len(self.tiers)
        for i, key in enumerate(hashes):
            k = self.locate(key)
            if k < 0:
                break
            if k == 0:
                continue
            nu = next_use[i] if next_use is not None else None
            if nu is None and self._nu is not None:
                nu = self._nu.get(key)
            per_tier[k] += 1
            self._raise_to_top(key, k, now, nu)
            if key in self.tiers[0].policy:
                self._prefetched.add(key)
                issued += 1
        total_s = 0.0
        for k in range(1, len(self.tiers)):
            if per_tier[k]:
                tier = self.tiers[k]
                nbytes = per_tier[k] * self.block_bytes
                t_s = self._read_time(tier, nbytes)
                total_s += t_s
                c = tier.counters
                c.prefetches += per_tier[k]
                c.bytes_read += nbytes
                c.read_time_s += t_s
        self.last_prefetch_time_s = total_s
        self.num_prefetch_issued += issued
        return issued

    # ------------------------------------------------------------------ checks

    def check_invariants(self) -> None:
        """Raise :class:`SimulationError` if a tier is over capacity (tests call this)."""
        for tier in self.tiers:
            if tier.policy.used > tier.capacity:
                raise SimulationError(
                    f"tier {tier.name!r} holds {tier.policy.used} > {tier.capacity} blocks"
                )
        if self.num_hits + self.num_misses != self.num_accesses:
            raise SimulationError("hits + misses != accesses")
