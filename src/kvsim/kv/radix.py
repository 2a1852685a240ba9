"""Prefix index: a radix tree over prefix-chained block-hash sequences (SGLang-style).

A request's prompt is a sequence of block hashes ``(h0, h1, ..., hn-1)``, one per full block,
each hash chained over the ones before it. The tree stores every cached *block* once: a block
is identified by its whole path from the root. Edges hold **runs** of hashes (a node's
``run`` is a tuple slice), so a match compares one tuple slice per node, not one block at a
time. Inserting ``(1, 2, 3, 4)``, then ``(1, 2, 5)``, then ``(1, 2, 3, 6, 7)`` gives::

    root ── (1, 2) ─┬─ (3,) ─┬─ (4,)          5 nodes, 7 blocks (sum of run lengths)
                    │        └─ (6, 7)        leaves: (4,), (6, 7), (5,)
                    └─ (5,)

The second insert split ``(1, 2, 3, 4)`` at its first mismatch into ``(1, 2)`` and
``(3, 4)``; the third split ``(3, 4)`` again. A split keeps the *original* node object as the
tail part (so a handle held by a caller still ends where it did) and creates a new node for
the head. :meth:`RadixTree.match_prefix` also splits, at the end of the match, so that the
returned ``last_node`` ends exactly at the matched length and locking it locks exactly that
prefix.

Locking: :meth:`RadixTree.lock` adds one to ``lock_ref`` of the node and every ancestor below
the root; :meth:`RadixTree.unlock` undoes it. Locked blocks are never evicted.

Eviction is leaf-only: only an unlocked node with no children can lose blocks. A heap holds
the evictable leaves keyed by a *priority key* (smallest first): a callable of the node, a
policy object with a ``priority(node)`` method, or one of the names in
:data:`PRIORITY_KEYS`; the default ``"lru"`` is the node's ``last_access``, a logical time the
caller passes as ``now`` (no wall clock; without ``now`` the tree ticks its own counter). Ties
go to the entry pushed first. An evicted leaf's parent becomes a leaf, and joins the heap, once
all its children are gone. :meth:`RadixTree.evict` frees exactly ``n`` blocks when that many are
evictable: if the chosen leaf's run is longer than what is still needed, only the tail of its
run is evicted (partial-leaf eviction) and the node stays, shorter. Evicted hashes are returned
in eviction order, the deepest block of a run first. Each heap operation is O(log n); stale
entries (a leaf accessed again, locked, or grown a child) are invalidated by a per-node stamp
and skipped, and the heap is compacted when more than half of it is stale.

Invariants (:meth:`RadixTree.check_invariants`, run after every step by
``tests/kv/test_radix_props.py``):

* every ``lock_ref >= 0``; a locked node's ancestors are locked (a parent's ``lock_ref`` is at
  least the sum of its children's); the root's ``lock_ref`` stays 0;
* every node except the root has a non-empty run, and ``parent.children[run[0]] is node``, so
  no two children of a node start with the same hash;
* ``depth == parent.depth + len(run)``; ``values`` is ``None`` or as long as ``run``;
* ``num_blocks`` equals the sum of run lengths, ``num_evictable_blocks`` the sum over unlocked
  nodes, ``num_nodes`` the number of non-root nodes;
* a node has a live heap entry iff it is an unlocked, non-root leaf, and exactly one.

Handles: a node object is a stable handle while it is locked. An unlocked node may be split
(its handle then covers only the tail run, still ending at the same block), shortened by
partial eviction or evicted (then ``parent is None``); locking an evicted node raises
:class:`~kvsim.errors.SimulationError`, as does unlocking a node that is not locked.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kvsim.errors import SimulationError

__all__ = [
    "PRIORITY_KEYS",
    "InsertResult",
    "MatchResult",
    "PriorityKey",
    "RadixNode",
    "RadixPriority",
    "RadixTree",
]

_COMPACT_SLACK = 64  # compact the heap when stale entries outnumber live ones by this much


@dataclass(slots=True, eq=False)
class RadixNode:
    """One node: the run of block hashes on the edge from its parent, plus bookkeeping."""

    run: tuple[int, ...]
    parent: RadixNode | None = field(repr=False)
    depth: int  # blocks from the root to the end of this node's run
    values: tuple[object, ...] | None = field(default=None, repr=False)
    children: dict[int, RadixNode] = field(default_factory=dict, repr=False)
    lock_ref: int = 0
    last_access: float = 0.0
    created_at: float = 0.0
    num_accesses: int = 0
    # Heap bookkeeping: an entry is live iff in_heap and its stamp equals heap_stamp.
    heap_stamp: int = field(default=0, repr=False)
    in_heap: bool = field(default=False, repr=False)

    @property
    def is_leaf(self) -> bool:
        """True if the node has no children."""
        return not self.children

    def prefix(self) -> tuple[int, ...]:
        """The full hash sequence from the root to the end of this node (O(depth))."""
        parts: list[tuple[int, ...]] = []
        node: RadixNode | None = self
        while node is not None:
            parts.append(node.run)
            node = node.parent
        return tuple(h for run in reversed(parts) for h in run)


PriorityKey = Callable[[RadixNode], Any]


@runtime_checkable
class RadixPriority(Protocol):
    """A policy object usable as an eviction key: smallest ``priority(node)`` goes first."""

    def priority(self, node: RadixNode) -> Any:
        """Return a comparable priority; it may only depend on the node's own fields."""
        ...


def _lru(node: RadixNode) -> Any:
    return node.last_access


def _mru(node: RadixNode) -> Any:
    return -node.last_access


def _fifo(node: RadixNode) -> Any:
    return node.created_at


def _lfu(node: RadixNode) -> Any:
    return (node.num_accesses, node.last_access)


def _deepest(node: RadixNode) -> Any:
    return (-node.depth, node.last_access)


PRIORITY_KEYS: dict[str, PriorityKey] = {
    "lru": _lru,
    "mru": _mru,
    "fifo": _fifo,
    "lfu": _lfu,
    "deepest": _deepest,
}
"""Built-in priority keys by name (smallest evicted first)."""


def _resolve_key(key: str | PriorityKey | RadixPriority) -> PriorityKey:
    if isinstance(key, str):
        try:
            return PRIORITY_KEYS[key]
        except KeyError:
            valid = ", ".join(sorted(PRIORITY_KEYS))
            raise SimulationError(f"unknown radix priority key {key!r}; valid: {valid}") from None
    if isinstance(key, RadixPriority):
        return key.priority
    if callable(key):
        return key
    raise SimulationError(f"radix priority key must be a name, callable or policy, got {key!r}")


@dataclass(slots=True)
class MatchResult:
    """Result of :meth:`RadixTree.match_prefix`.

    ``num_matched_blocks`` blocks of the query are cached; ``last_node`` ends exactly there
    (the root if nothing matched); ``nodes`` is the path below the root, in order.
    """

    num_matched_blocks: int
    last_node: RadixNode
    nodes: list[RadixNode]

    def values(self) -> list[object]:
        """Per-block values of the matched blocks (``None`` where none was stored)."""
        out: list[object] = []
        for node in self.nodes:
            if node.values is None:
                out.extend([None] * len(node.run))
            else:
                out.extend(node.values)
        return out


@dataclass(slots=True)
class InsertResult:
    """Result of :meth:`RadixTree.insert`.

    The first ``num_matched_blocks`` blocks were already cached (their stored values are
    kept); ``num_new_blocks`` were added. ``last_node`` ends at the last inserted block.
    """

    num_new_blocks: int
    num_matched_blocks: int
    last_node: RadixNode


def _common_len(run: tuple[int, ...], key: tuple[int, ...], start: int) -> int:
    """Length of the common prefix of ``run`` and ``key[start:]`` (the first is known equal)."""
    limit = min(len(run), len(key) - start)
    k = 1
    while k < limit and run[k] == key[start + k]:
        k += 1
    return k


class RadixTree:
    """Radix tree of cached block-hash prefixes with locking and leaf-only eviction."""

    __slots__ = (
        "_clock",
        "_heap",
        "_key",
        "_key_source",
        "_num_blocks",
        "_num_live",
        "_num_locked_blocks",
        "_num_nodes",
        "_root",
        "_seq",
        "on_evict",
    )

    def __init__(
        self,
        priority: str | PriorityKey | RadixPriority = "lru",
        on_evict: Callable[[int, object], None] | None = None,
    ) -> None:
        """Create an empty tree.

        ``priority`` orders evictable leaves (smallest first). ``on_evict(hash, value)`` is
        called for every evicted block, deepest first, e.g. to free its KV block.
        """
        self._root = RadixNode(run=(), parent=None, depth=0)
        self._key_source: object = priority
        self._key: PriorityKey = _resolve_key(priority)
        self._heap: list[tuple[Any, int, int, RadixNode]] = []
        self._num_live = 0
        self._seq = 0
        self._clock = 0.0
        self._num_blocks = 0
        self._num_locked_blocks = 0
        self._num_nodes = 0
        self.on_evict = on_evict

    # ------------------------------------------------------------------ counts

    @property
    def root(self) -> RadixNode:
        """The root node (empty run, never locked, never evicted)."""
        return self._root

    @property
    def num_blocks(self) -> int:
        """Total cached blocks (sum of run lengths)."""
        return self._num_blocks

    @property
    def num_evictable_blocks(self) -> int:
        """Blocks in unlocked nodes: what repeated leaf-only eviction could free."""
        return self._num_blocks - self._num_locked_blocks

    @property
    def num_locked_blocks(self) -> int:
        """Blocks in locked nodes."""
        return self._num_locked_blocks

    @property
    def num_nodes(self) -> int:
        """Number of nodes below the root."""
        return self._num_nodes

    def __len__(self) -> int:
        """Number of cached blocks (same as :attr:`num_blocks`)."""
        return self._num_blocks

    # ------------------------------------------------------------------ heap

    def _push(self, node: RadixNode) -> None:
        """(Re-)enter an evictable leaf in the heap with its current priority."""
        node.heap_stamp += 1
        if not node.in_heap:
            node.in_heap = True
            self._num_live += 1
        self._seq += 1
        heapq.heappush(self._heap, (self._key(node), self._seq, node.heap_stamp, node))
        if len(self._heap) > 2 * self._num_live + _COMPACT_SLACK:
            self._compact()

    def _unpush(self, node: RadixNode) -> None:
        """Invalidate the node's heap entry, if any (lazy deletion)."""
        if node.in_heap:
            node.in_heap = False
            node.heap_stamp += 1
            self._num_live -= 1

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[3].in_heap and e[2] == e[3].heap_stamp]
        heapq.heapify(self._heap)

    def set_priority(self, priority: str | PriorityKey | RadixPriority) -> None:
        """Use a new priority key from now on; re-keys the evictable leaves once (O(leaves))."""
        self._key = _resolve_key(priority)
        self._key_source = priority
        self._compact()
        key = self._key
        self._heap = [(key(e[3]), e[1], e[2], e[3]) for e in self._heap]
        heapq.heapify(self._heap)

    # ------------------------------------------------------------------ structure

    def _split(self, node: RadixNode, k: int) -> RadixNode:
        """Split ``node`` after ``k`` blocks; return the new head node (``node`` keeps the tail)."""
        parent = node.parent
        assert parent is not None
        run = node.run
        values = node.values
        head = RadixNode(
            run=run[:k],
            parent=parent,
            depth=node.depth - (len(run) - k),
            values=None if values is None else values[:k],
            lock_ref=node.lock_ref,
            last_access=node.last_access,
            created_at=node.created_at,
            num_accesses=node.num_accesses,
        )
        head.children[run[k]] = node
        parent.children[run[0]] = head
        node.run = run[k:]
        node.values = None if values is None else values[k:]
        node.parent = head
        self._num_nodes += 1
        if node.in_heap:  # its run got shorter: refresh keys that look at it
            self._push(node)
        return head

    def _walk(self, key: tuple[int, ...], nodes: list[RadixNode]) -> tuple[RadixNode, int]:
        """Follow ``key`` from the root, splitting at a mid-run end; return (node, matched)."""
        node = self._root
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None:
                break
            run = child.run
            r = len(run)
            if key[i : i + r] == run:
                i += r
                node = child
                nodes.append(child)
                continue
            k = _common_len(run, key, i)
            node = self._split(child, k)
            nodes.append(node)
            i += k
            break
        return node, i

    def _tick(self, now: float | None) -> float:
        if now is None:
            self._clock += 1.0
            return self._clock
        return now

    # ------------------------------------------------------------------ public ops

    def match_prefix(self, hashes: Sequence[int], now: float | None = None) -> MatchResult:
        """Find the longest cached prefix of ``hashes`` and mark it accessed at ``now``.

        Splits the node the match ends inside of, so ``last_node`` ends exactly at the match.
        Every node on the path gets ``last_access = now`` and one more ``num_accesses``.
        """
        key = hashes if type(hashes) is tuple else tuple(hashes)
        now = self._tick(now)
        nodes: list[RadixNode] = []
        node, matched = self._walk(key, nodes)
        for nd in nodes:
            nd.last_access = now
            nd.num_accesses += 1
        if node.in_heap:
            self._push(node)
        return MatchResult(matched, node, nodes)

    def peek_prefix_len(self, hashes: Sequence[int]) -> int:
        """Length of the longest cached prefix of ``hashes``; changes nothing (for routers)."""
        key = hashes if type(hashes) is tuple else tuple(hashes)
        node = self._root
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None:
                break
            run = child.run
            r = len(run)
            if key[i : i + r] != run:
                return i + _common_len(run, key, i)
            i += r
            node = child
        return i

    def insert(
        self,
        hashes: Sequence[int],
        value_per_block: Sequence[object] | None = None,
        now: float | None = None,
    ) -> InsertResult:
        """Cache every prefix of ``hashes``; the whole path is marked accessed at ``now``.

        Blocks already cached keep their stored values; new blocks get the matching entries
        of ``value_per_block`` (which must be as long as ``hashes``) or no value.
        """
        key = hashes if type(hashes) is tuple else tuple(hashes)
        n = len(key)
        if value_per_block is not None and len(value_per_block) != n:
            raise SimulationError(f"insert: {len(value_per_block)} values for {n} block hashes")
        now = self._tick(now)
        nodes: list[RadixNode] = []
        node, matched = self._walk(key, nodes)
        for nd in nodes:
            nd.last_access = now
            nd.num_accesses += 1
        if matched == n:
            if node.in_heap:
                self._push(node)
            return InsertResult(0, matched, node)
        if node.in_heap:  # about to get a child: no longer a leaf
            self._unpush(node)
        leaf = RadixNode(
            run=key[matched:],
            parent=node,
            depth=node.depth + n - matched,
            values=None if value_per_block is None else tuple(value_per_block[matched:]),
            last_access=now,
            created_at=now,
            num_accesses=1,
        )
        node.children[key[matched]] = leaf
        self._num_blocks += n - matched
        self._num_nodes += 1
        self._push(leaf)
        return InsertResult(n - matched, matched, leaf)

    def lock(self, node: RadixNode) -> None:
        """Lock ``node`` and its ancestors (ref counts); locked blocks are never evicted."""
        root = self._root
        if node is root:
            return
        if node.parent is None:
            raise SimulationError("lock on an evicted radix node")
        if node.in_heap:
            self._unpush(node)
        nd = node
        while nd is not root:
            if nd.lock_ref == 0:
                self._num_locked_blocks += len(nd.run)
            nd.lock_ref += 1
            parent = nd.parent
            assert parent is not None
            nd = parent

    def unlock(self, node: RadixNode) -> None:
        """Undo one :meth:`lock` of ``node``; an unlocked leaf becomes evictable again."""
        root = self._root
        if node is root:
            return
        if node.parent is None or node.lock_ref <= 0:
            raise SimulationError(f"unlock of a radix node that is not locked: {node!r}")
        nd = node
        while nd is not root:
            nd.lock_ref -= 1
            if nd.lock_ref == 0:
                self._num_locked_blocks -= len(nd.run)
            parent = nd.parent
            assert parent is not None
            nd = parent
        if node.lock_ref == 0 and not node.children:
            self._push(node)

    def evict(
        self, num_blocks: int, key: str | PriorityKey | RadixPriority | None = None
    ) -> list[int]:
        """Evict up to ``num_blocks`` unlocked blocks, leaves first, smallest priority first.

        Returns the evicted hashes in eviction order (deepest block of a run first). Frees
        exactly ``num_blocks`` if that many are evictable (the last leaf may lose only its
        tail). A ``key`` other than the current one becomes the tree's priority
        (:meth:`set_priority`, one O(leaves) re-key); the same key again costs nothing.
        """
        if key is not None and key is not self._key_source and key != self._key_source:
            self.set_priority(key)
        evicted: list[int] = []
        remaining = num_blocks
        heap = self._heap
        root = self._root
        while remaining > 0 and heap:
            _, _, stamp, node = heapq.heappop(heap)
            if not node.in_heap or stamp != node.heap_stamp:
                continue
            node.in_heap = False
            self._num_live -= 1
            run = node.run
            r = len(run)
            if r > remaining:
                self._evict_tail(node, remaining, evicted)
                remaining = 0
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
                heap = self._heap  # _push may have compacted into a new list
        return evicted

    def _evict_tail(self, node: RadixNode, count: int, evicted: list[int]) -> None:
        """Evict the last ``count`` blocks of leaf ``node`` (fewer than its run)."""
        cut = len(node.run) - count
        values = node.values
        self._report(node.run[cut:], None if values is None else values[cut:], evicted)
        node.run = node.run[:cut]
        node.values = None if values is None else values[:cut]
        node.depth -= count
        self._num_blocks -= count
        self._push(node)

    def _report(
        self, run: tuple[int, ...], values: tuple[object, ...] | None, evicted: list[int]
    ) -> None:
        evicted.extend(reversed(run))
        hook = self.on_evict
        if hook is not None:
            for j in range(len(run) - 1, -1, -1):
                hook(run[j], None if values is None else values[j])

    # ------------------------------------------------------------------ inspection

    def iter_nodes(self) -> Iterator[RadixNode]:
        """All nodes below the root, depth first, children in insertion order."""
        stack = list(reversed(self._root.children.values()))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children.values()))

    def shape(self) -> dict[tuple[int, ...], Any]:
        """The tree as nested dicts ``{run: {child run: {...}}}`` (for tests and debugging)."""

        def sub(node: RadixNode) -> dict[tuple[int, ...], Any]:
            return {c.run: sub(c) for c in node.children.values()}

        return sub(self._root)

    def evictable_leaves(self) -> list[RadixNode]:
        """Nodes with a live heap entry (unlocked, non-root leaves), in no particular order."""
        return [e[3] for e in self._heap if e[3].in_heap and e[2] == e[3].heap_stamp]

    def check_invariants(self) -> None:
        """Raise :class:`SimulationError` if any invariant in the module docstring fails."""
        root = self._root
        if root.run or root.lock_ref != 0 or root.in_heap or root.parent is not None:
            raise SimulationError("radix root corrupted")
        num_blocks = num_locked = num_nodes = 0
        for node in self.iter_nodes():
            self._check_node(node)
            num_nodes += 1
            num_blocks += len(node.run)
            num_locked += len(node.run) if node.lock_ref > 0 else 0
        counts = (num_blocks, num_locked, num_nodes)
        if counts != (self._num_blocks, self._num_locked_blocks, self._num_nodes):
            raise SimulationError(
                f"radix counters {(self._num_blocks, self._num_locked_blocks, self._num_nodes)}"
                f" != recomputed {counts}"
            )
        live = [e[3] for e in self._heap if e[3].in_heap and e[2] == e[3].heap_stamp]
        in_heap = {id(n) for n in self.iter_nodes() if n.in_heap}
        if len(live) != self._num_live or {id(n) for n in live} != in_heap:
            raise SimulationError("radix heap: live entries do not match the evictable leaves")

    def _check_node(self, node: RadixNode) -> None:
        parent = node.parent
        if parent is None or not node.run or parent.children.get(node.run[0]) is not node:
            raise SimulationError(f"radix node detached, empty or misfiled: {node!r}")
        if node.depth != parent.depth + len(node.run):
            raise SimulationError(f"radix node depth wrong: {node!r}")
        if node.values is not None and len(node.values) != len(node.run):
            raise SimulationError(f"radix node values/run length mismatch: {node!r}")
        if node.lock_ref < 0:
            raise SimulationError(f"radix node negative lock_ref: {node!r}")
        if node.lock_ref < sum(c.lock_ref for c in node.children.values()):
            raise SimulationError(f"radix node locked less than its children: {node!r}")
        evictable = node.lock_ref == 0 and not node.children
        if node.in_heap != evictable:
            raise SimulationError(f"radix node heap membership wrong: {node!r}")
