"""Tenant partitions: one inner policy per tenant, evicting from the tenant most over quota.

Each key belongs to a tenant (``tenant_of(key)``; by default the first element of a tuple
key, else the single tenant ``None``). Tenant ``t`` is guaranteed ``quotas[t]`` blocks
(``default_quota`` for tenants not listed) and may borrow free space beyond it. ``evict``
picks the tenant with the largest ``used - quota``, counting the incoming key (if given) as
one more block of its tenant, which wins ties (else the tenant whose overage was set first),
and asks *its* inner policy (``inner``, any registered name, built with the tenant's
quota as capacity) for the victim, so a tenant within its quota loses blocks only when every
other tenant is within its own.

``_heap`` holds ``(-(used - quota), seq, tenant)``; an entry is live iff ``seq`` equals
``_seq[tenant]`` (every change of a tenant's usage pushes a fresh entry), stale ones are
skipped and the heap is rebuilt when mostly stale: O(log T) amortised plus the inner policy's
cost.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Mapping

from kvsim.errors import ConfigError
from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    create_policy,
    not_resident,
    register_eviction,
)

__all__ = ["TenantPolicy", "default_tenant_of"]


def default_tenant_of(key: Hashable) -> Hashable:
    """``key[0]`` for a tuple key (``(tenant, block_hash)``), else ``None`` (one tenant)."""
    return key[0] if isinstance(key, tuple) and key else None


@register_eviction("tenant")
class TenantPolicy(EvictionPolicy):
    """Per-tenant partitions with quotas.

    Invariants: ``used == sum(p.used for p in partitions)``; a key is resident in exactly the
    partition of ``tenant_of(key)``; the live heap entry of each tenant with resident keys
    carries its current overage.
    """

    def __init__(
        self,
        capacity: int = 0,
        quotas: Mapping[Hashable, int] | None = None,
        default_quota: int = 0,
        inner: str = "lru",
        tenant_of: Callable[[Hashable], Hashable] | None = None,
    ) -> None:
        super().__init__(capacity)
        self._require_capacity()
        self.quotas = dict(quotas or {})
        if any(q < 0 for q in self.quotas.values()) or default_quota < 0:
            raise ConfigError("policy.quotas", "quotas must be >= 0 blocks")
        self.default_quota = default_quota
        self.inner = inner
        create_policy(inner, capacity=capacity)  # validate the name now, not at first insert
        self.tenant_of = tenant_of or default_tenant_of
        self._parts: dict[Hashable, EvictionPolicy] = {}
        self._key_to_tenant: dict[Hashable, Hashable] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._seq: dict[Hashable, int] = {}
        self._counter = 0

    def quota(self, tenant: Hashable) -> int:
        """Blocks guaranteed to ``tenant``."""
        return self.quotas.get(tenant, self.default_quota)

    def partition(self, tenant: Hashable) -> EvictionPolicy | None:
        """The inner policy of ``tenant`` (None if it never had a key)."""
        return self._parts.get(tenant)

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._key_to_tenant:
            raise already_resident(key)
        tenant = self.tenant_of(key)
        part = self._parts.get(tenant)
        if part is None:
            cap = self.quota(tenant) or self.capacity
            part = self._parts[tenant] = create_policy(self.inner, capacity=cap)
        part.on_insert(key, size, now, next_use=next_use)
        self._key_to_tenant[key] = tenant
        self.used += size
        self._update(tenant, part)

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        tenant = self._key_to_tenant.get(key, _MISSING)
        if tenant is _MISSING:
            raise not_resident(key)
        self._parts[tenant].on_access(key, now, next_use=next_use)

    def on_remove(self, key: Hashable) -> None:
        tenant = self._key_to_tenant.pop(key, _MISSING)
        if tenant is _MISSING:
            raise not_resident(key)
        part = self._parts[tenant]
        before = part.used
        part.on_remove(key)
        self.used -= before - part.used
        self._update(tenant, part)

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        t_in = _MISSING if incoming is None else self.tenant_of(incoming)
        own = t_in if t_in is not _MISSING and t_in in self._seq else _MISSING
        heap, seqs = self._heap, self._seq
        skipped: list[Hashable] = []
        victim: Hashable | None = None
        while victim is None and heap:
            neg_over, seq, tenant = heap[0]
            if seqs.get(tenant) != seq:
                heapq.heappop(heap)
                continue
            if own is not _MISSING and self._overage(own) + 1 >= -neg_over:
                tenant, own = own, _MISSING  # the incoming key's tenant pays first on a tie
            else:
                heapq.heappop(heap)
            victim = self._evict_from(tenant, incoming if tenant == t_in else None)
            if victim is None:
                skipped.append(tenant)
        for tenant in skipped:
            self._update(tenant, self._parts[tenant])
        return victim

    def _overage(self, tenant: Hashable) -> int:
        """Blocks ``tenant`` holds beyond its quota (negative: below it)."""
        return self._parts[tenant].used - self.quotas.get(tenant, self.default_quota)

    def _evict_from(self, tenant: Hashable, hint: Hashable | None) -> Hashable | None:
        """Ask ``tenant``'s partition for a victim (``hint``: the incoming key if it is this
        tenant's) and update the books."""
        part = self._parts[tenant]
        before = part.used
        victim = part.evict(hint)
        if victim is not None:
            del self._key_to_tenant[victim]
            self.used -= before - part.used
            self._update(tenant, part)
        return victim

    def _update(self, tenant: Hashable, part: EvictionPolicy) -> None:
        """Push ``tenant``'s current overage (or forget it when it holds nothing)."""
        if not part.used:
            self._seq.pop(tenant, None)
            return
        self._counter += 1
        self._seq[tenant] = self._counter
        heap = self._heap
        heapq.heappush(
            heap, (self.quotas.get(tenant, self.default_quota) - part.used, self._counter, tenant)
        )
        if len(heap) > 2 * len(self._seq) + 64:
            self._heap = [(self.quota(t) - self._parts[t].used, s, t) for t, s in self._seq.items()]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._key_to_tenant)

    def __contains__(self, key: object) -> bool:
        return key in self._key_to_tenant


_MISSING: Hashable = object()
