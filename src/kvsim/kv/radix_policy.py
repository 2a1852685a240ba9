"""A radix prefix index whose evictable leaves are ranked by an :class:`EvictionPolicy`.

:class:`~kvsim.kv.radix.RadixTree` orders its evictable leaves with a *priority key* (a
function of the node). :class:`PolicyRadixTree` keeps the same tree, locking and leaf-only
eviction, but hands the set of evictable leaves to any registered eviction policy (lru, arc,
s3fifo, sieve, ...), so a policy written once for ``kvsim cache`` also ranks the prefix index.

The policy sees *leaf-set events*, keyed by the node object (nodes hash by identity):

* a node that becomes an evictable leaf (inserted, unlocked, or its last child evicted) is an
  ``on_insert(node, size=len(node.run), now)``;
* a hit on an evictable leaf (a match or insert ending there) is an ``on_access(node, now)``;
* a leaf that stops being evictable (locked, or given a child) is an ``on_remove(node)``;
* a leaf whose run changes length (split by a match, or shortened by partial eviction) is
  removed and re-inserted with its new size;
* :meth:`PolicyRadixTree.evict` asks ``policy.evict()`` for victims until enough blocks are
  free, evicting only the tail of the last victim if its run is longer than needed.

``now`` given to the policy is the tree's logical clock: the largest time seen so far (policies
require non-decreasing time). Sizes are in blocks, so size-aware policies see real run lengths.

A parent that becomes a leaf enters the policy as a fresh insertion, so an LRU policy here
ranks it as recently used, whereas ``RadixTree("lru")`` ranks it by its own last access. Both
are leaf-only LRU approximations; they agree whenever no evicted leaf leaves its parent a leaf
(e.g. disjoint prompts). Policies that need next-use annotations (belady) or training
(learned) are refused: the tree cannot supply per-access annotations.

Invariant (checked by :meth:`check_invariants`): the policy's resident keys are exactly the
unlocked non-root leaves, and ``policy.used`` is the sum of their run lengths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies import EvictionPolicy, create_policy
from kvsim.kv.radix import PriorityKey, RadixNode, RadixPriority, RadixTree

__all__ = ["PolicyRadixTree"]


class PolicyRadixTree(RadixTree):
    """:class:`RadixTree` with leaf eviction order decided by an eviction policy."""

    __slots__ = ("_now", "_policy", "_sizes")

    def __init__(
        self,
        policy: str | EvictionPolicy,
        capacity_blocks: int = 0,
        on_evict: Callable[[int, object], None] | None = None,
        **policy_params: Any,
    ) -> None:
        """Create an empty tree whose leaves are ranked by ``policy``.

        ``policy`` is a registered name (built with ``capacity_blocks`` and ``policy_params``)
        or a policy instance. ``capacity_blocks`` is what the caller's cache holds; adaptive
        policies (ARC, S3-FIFO, 2Q) size their queues and ghost lists from it.
        """
        super().__init__("lru", on_evict)
        if isinstance(policy, str):
            policy = create_policy(policy, capacity=capacity_blocks, **policy_params)
        if policy.needs_next_use or getattr(policy, "needs_training", False):
            raise ConfigError(
                "policy",
                f"{policy.name!r} needs next-use annotations or training, which a prefix index"
                " cannot supply; use it in `kvsim cache` instead",
            )
        if len(policy):
            raise SimulationError("PolicyRadixTree needs an empty policy")
        self._policy = policy
        self._sizes: dict[RadixNode, int] = {}
        self._now = 0.0

    @property
    def policy(self) -> EvictionPolicy:
        """The policy ranking the evictable leaves."""
        return self._policy

    def _tick(self, now: float | None) -> float:
        t = super()._tick(now)
        if t > self._now:
            self._now = t
        return t

    # ------------------------------------------------------------------ leaf-set hooks

    def _push(self, node: RadixNode) -> None:
        """``node`` is (still) an evictable leaf: insert it, or record a hit on it."""
        size = len(node.run)
        policy = self._policy
        if node.in_heap:
            if self._sizes[node] == size:
                policy.on_access(node, self._now)
                return
            policy.on_remove(node)  # run changed length: re-enter with the new size
        else:
            node.in_heap = True
            self._num_live += 1
        self._sizes[node] = size
        policy.on_insert(node, size, self._now)

    def _unpush(self, node: RadixNode) -> None:
        """``node`` is no longer an evictable leaf (locked or given a child)."""
        if node.in_heap:
            node.in_heap = False
            self._num_live -= 1
            del self._sizes[node]
            self._policy.on_remove(node)

    def _compact(self) -> None:
        """Nothing to compact: the policy holds no stale entries."""

    def set_priority(self, priority: str | PriorityKey | RadixPriority) -> None:
        """Not supported: the policy decides the order."""
        raise SimulationError("PolicyRadixTree: the eviction order comes from its policy")

    # ------------------------------------------------------------------ eviction

    def evict(
        self, num_blocks: int, key: str | PriorityKey | RadixPriority | None = None
    ) -> list[int]:
        """Evict up to ``num_blocks`` unlocked blocks, leaves only, in the policy's order.

        Same contract as :meth:`RadixTree.evict` (exactly ``num_blocks`` when that many are
        evictable; deepest block of a run first); ``key`` must be ``None``.
        """
        if key is not None:
            raise SimulationError("PolicyRadixTree.evict takes no priority key")
        evicted: list[int] = []
        remaining = num_blocks
        root = self._root
        policy = self._policy
        while remaining > 0:
            victim = policy.evict()
            if victim is None:
                break
            if not isinstance(victim, RadixNode) or not victim.in_heap:
                raise SimulationError(f"policy {policy.name!r} evicted a non-leaf {victim!r}")
            node = victim
            node.in_heap = False
            self._num_live -= 1
            del self._sizes[node]
            run = node.run
            r = len(run)
            if r > remaining:
                self._evict_tail(node, remaining, evicted)  # re-inserts the shorter leaf
                break
            self._report(run, node.values, evicted)
            parent = node.parent
            assert parent is not None
            del parent.children[run[0]]
            node.parent = None
            self._num_blocks -= r
            self._num_nodes -= 1
            remaining -= r
            if parent is not root and not parent.children and parent.lock_ref == 0:
                self._push(parent)
        return evicted

    # ------------------------------------------------------------------ inspection

    def evictable_leaves(self) -> list[RadixNode]:
        """The unlocked non-root leaves (the policy's resident keys), in no particular order."""
        return list(self._sizes)

    def check_invariants(self) -> None:
        """The base tree's invariants, plus: policy keys == evictable leaves, sizes agree."""
        sizes = self._sizes
        leaves = [n for n in self.iter_nodes() if n.lock_ref == 0 and not n.children]
        if len(leaves) != len(sizes) or any(n not in sizes for n in leaves):
            raise SimulationError("policy radix: tracked leaves differ from evictable leaves")
        if len(self._policy) != len(sizes) or self._num_live != len(sizes):
            raise SimulationError("policy radix: policy size differs from evictable leaves")
        if self._policy.used != sum(len(n.run) for n in leaves):
            raise SimulationError("policy radix: policy.used differs from evictable blocks")
        if any(sizes[n] != len(n.run) for n in leaves):
            raise SimulationError("policy radix: a recorded leaf size is stale")
        for node in self.iter_nodes():
            self._check_node(node)
