"""Differential test of the radix prefix index against a naive reference, plus invariants.

The reference stores every cached block as its whole prefix tuple in a dict (with its last
access time, creation time and value) and evicts one block at a time: among cached prefixes
with no cached extension and no lock, the one with the smallest key (last access for ``lru``,
creation time for ``fifo``). It is quadratic but obviously right. Logical time goes up by one
per operation, so two leaves never tie (two blocks touched by the same operation lie on one
path), and the reference asserts that. A hypothesis state machine drives both with the same
inserts, matches, locks, unlocks and evictions and compares match lengths, values, block
counts and the exact evicted hashes, then checks the tree's invariants after every step.
"""

from __future__ import annotations

from collections import Counter

import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kvsim.kv.radix import PRIORITY_KEYS, RadixNode, RadixTree

Key = tuple[int, ...]
ORDERED = ("lru", "fifo")  # keys the reference reproduces exactly; others are checked for legality
KEYS = st.lists(st.integers(min_value=0, max_value=2), max_size=7).map(tuple)


class RefCache:
    """Naive reference: one dict entry per cached block, keyed by its whole prefix."""

    def __init__(self, priority: str) -> None:
        self.priority = priority
        self.last: dict[Key, int] = {}
        self.created: dict[Key, int] = {}
        self.value: dict[Key, object] = {}
        self.locks: Counter[Key] = Counter()

    def match(self, key: Key, now: int) -> int:
        m = 0
        while m < len(key) and key[: m + 1] in self.last:
            m += 1
        for j in range(1, m + 1):
            self.last[key[:j]] = now
        return m

    def insert(self, key: Key, values: list[object] | None, now: int) -> int:
        new = 0
        for j in range(1, len(key) + 1):
            p = key[:j]
            if p not in self.last:
                new += 1
                self.created[p] = now
                self.value[p] = None if values is None else values[j - 1]
            self.last[p] = now
        return new

    def lock(self, prefix: Key, delta: int) -> None:
        for j in range(1, len(prefix) + 1):
            self.locks[prefix[:j]] += delta

    def num_evictable(self) -> int:
        return sum(1 for p in self.last if self.locks[p] == 0)

    def evict(self, n: int) -> list[Key]:
        out: list[Key] = []
        order = self.last if self.priority == "lru" else self.created
        while len(out) < n:
            parents = {p[:-1] for p in self.last}
            leaves = [p for p in self.last if self.locks[p] == 0 and p not in parents]
            if not leaves:
                break
            best = min(order[p] for p in leaves)
            victims = [p for p in leaves if order[p] == best]
            assert len(victims) == 1, f"reference tie: {victims}"
            p = victims[0]
            del self.last[p], self.created[p], self.value[p]
            out.append(p)
        return out


def tree_blocks(tree: RadixTree) -> dict[Key, tuple[float, float]]:
    """Every cached block of the tree as ``{prefix: (last_access, created_at)}``."""
    out: dict[Key, tuple[float, float]] = {}
    for node in tree.iter_nodes():
        full = node.prefix()
        for j in range(len(full) - len(node.run) + 1, len(full) + 1):
            out[full[:j]] = (node.last_access, node.created_at)
    return out


class RadixMachine(RuleBasedStateMachine):
    """Drive a RadixTree and a RefCache with the same operations; compare after each."""

    def __init__(self) -> None:
        super().__init__()
        self.tree = RadixTree()
        self.ref = RefCache("lru")
        self.now = 0
        self.held: list[tuple[RadixNode, Key]] = []
        self.evicted_values: list[tuple[int, object]] = []

    @initialize(priority=st.sampled_from(sorted(PRIORITY_KEYS)))
    def setup(self, priority: str) -> None:
        self.tree = RadixTree(priority=priority, on_evict=self._on_evict)
        self.ref = RefCache(priority)

    def _on_evict(self, h: int, value: object) -> None:
        self.evicted_values.append((h, value))

    def _tick(self) -> int:
        self.now += 1
        return self.now

    @rule(key=KEYS, with_values=st.booleans())
    def insert(self, key: Key, with_values: bool) -> None:
        now = self._tick()
        values: list[object] | None = (
            [(key[: j + 1], now) for j in range(len(key))] if with_values else None
        )
        result = self.tree.insert(key, value_per_block=values, now=now)
        new = self.ref.insert(key, values, now)
        assert (result.num_new_blocks, result.num_matched_blocks) == (new, len(key) - new)
        assert result.last_node.depth == len(key)
        assert result.last_node.prefix() == key

    @rule(key=KEYS)
    def match(self, key: Key) -> None:
        peeked = self.tree.peek_prefix_len(key)
        now = self._tick()
        result = self.tree.match_prefix(list(key), now=now)
        m = self.ref.match(key, now)
        assert result.num_matched_blocks == m == peeked
        assert result.last_node.prefix() == key[:m]
        assert result.values() == [self.ref.value[key[: j + 1]] for j in range(m)]

    @rule(key=KEYS)
    def lock(self, key: Key) -> None:
        now = self._tick()
        result = self.tree.match_prefix(key, now=now)
        m = self.ref.match(key, now)
        self.tree.lock(result.last_node)
        self.ref.lock(key[:m], +1)
        self.held.append((result.last_node, key[:m]))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def unlock(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(min_value=0, max_value=len(self.held) - 1))
        node, prefix = self.held.pop(i)
        assert node.prefix() == prefix  # a locked handle never moves
        self.tree.unlock(node)
        self.ref.lock(prefix, -1)

    @precondition(lambda self: self.ref.priority in ORDERED)
    @rule(n=st.integers(min_value=0, max_value=9))
    def evict(self, n: int) -> None:
        values = dict(self.ref.value)  # the reference deletes what it evicts
        self.evicted_values.clear()
        got = self.tree.evict(n)
        want = self.ref.evict(n)
        assert got == [p[-1] for p in want]
        assert self.evicted_values == [(p[-1], values[p]) for p in want]

    @precondition(lambda self: self.ref.priority not in ORDERED)
    @rule(n=st.integers(min_value=0, max_value=9))
    def evict_any_key(self, n: int) -> None:
        """Other keys: the victims must be a legal leaf-only, lock-respecting removal."""
        ref = self.ref
        before = set(tree_blocks(self.tree))
        want = min(n, ref.num_evictable())
        got = self.tree.evict(n)
        removed = before - set(tree_blocks(self.tree))
        assert len(got) == len(removed) == want
        assert sorted(got) == sorted(p[-1] for p in removed)
        assert all(ref.locks[p] == 0 for p in removed)
        for p in removed:
            del ref.last[p], ref.created[p], ref.value[p]
        assert not any(p[:-1] in removed for p in ref.last)  # no orphaned extensions

    @invariant()
    def invariants_hold(self) -> None:
        tree, ref = self.tree, self.ref
        tree.check_invariants()
        assert tree.num_blocks == len(tree) == len(ref.last)
        assert tree.num_evictable_blocks == ref.num_evictable()
        assert tree_blocks(tree) == {p: (ref.last[p], ref.created[p]) for p in ref.last}


RadixMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, derandomize=True
)
TestRadixDifferential = RadixMachine.TestCase


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    keys=st.lists(KEYS, max_size=20),
    n=st.integers(min_value=0, max_value=40),
)
def test_evict_frees_exactly_n_when_possible(keys: list[Key], n: int) -> None:
    tree = RadixTree()
    for key in keys:
        tree.insert(key)
    before = tree.num_blocks
    evicted = tree.evict(n)
    assert len(evicted) == min(n, before)
    assert tree.num_blocks == before - len(evicted)
    tree.check_invariants()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(keys=st.lists(KEYS, min_size=1, max_size=20), query=KEYS)
def test_match_length_is_the_longest_cached_prefix(keys: list[Key], query: Key) -> None:
    tree = RadixTree()
    for key in keys:
        tree.insert(key)
    cached = {k[:j] for k in keys for j in range(len(k) + 1)}
    want = max(j for j in range(len(query) + 1) if query[:j] in cached)
    shape = tree.shape()
    assert tree.peek_prefix_len(query) == want
    assert tree.shape() == shape
    assert tree.match_prefix(query).num_matched_blocks == want
    tree.check_invariants()
