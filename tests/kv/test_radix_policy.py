"""PolicyRadixTree: the radix prefix index with leaves ranked by a registered eviction policy."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies import create_policy, policy_names
from kvsim.kv.radix import RadixTree
from kvsim.kv.radix_policy import PolicyRadixTree

#: Policies that rank radix leaves (belady needs next-use annotations, learned needs training).
LEAF_POLICIES = [n for n in policy_names() if n not in ("belady", "learned")]


def test_disjoint_prompts_lru_matches_heap_lru_exactly() -> None:
    heap, pol = RadixTree("lru"), PolicyRadixTree("lru", capacity_blocks=16)
    ops = [(1, 2, 3), (10, 11), (20,), (1, 2, 3), (30, 31, 32), (10, 11)]
    for t, key in enumerate(ops):
        heap.insert(key, now=t)
        pol.insert(key, now=t)
    # LRU order of leaves: (20,) t=2, (1,2,3) t=3, (30..) t=4, (10,11) t=5
    assert pol.evict(4) == heap.evict(4) == [20, 3, 2, 1]
    assert pol.evict(1) == heap.evict(1) == [32]  # partial leaf: only the tail block
    assert pol.num_blocks == heap.num_blocks == 4
    pol.check_invariants()


def test_fifo_ignores_hits_and_lfu_keeps_the_frequent_leaf() -> None:
    fifo = PolicyRadixTree("fifo", capacity_blocks=8)
    lfu = PolicyRadixTree("lfu", capacity_blocks=8)
    for tree in (fifo, lfu):
        tree.insert((1,), now=0)
        tree.insert((2,), now=1)
        tree.match_prefix((1,), now=2)
        tree.match_prefix((1,), now=3)
        tree.insert((3,), now=4)
    assert fifo.evict(1) == [1]  # first in, first out, hits or not
    assert lfu.evict(1) == [2]  # (1,) was hit twice, (2,) never
    assert lfu.evict(1) == [3]


def test_parent_becomes_a_leaf_after_its_children_go() -> None:
    tree = PolicyRadixTree("lru", capacity_blocks=8)
    tree.insert((1, 2, 4), now=0)
    tree.insert((1, 2, 5), now=1)
    assert {n.run for n in tree.evictable_leaves()} == {(4,), (5,)}
    assert tree.evict(2) == [4, 5]
    assert [n.run for n in tree.evictable_leaves()] == [(1, 2)]
    assert tree.policy.used == 2
    assert tree.evict(5) == [2, 1]
    assert tree.num_blocks == 0 and len(tree.policy) == 0


def test_locked_paths_are_never_evicted_and_return_on_unlock() -> None:
    tree = PolicyRadixTree("sieve", capacity_blocks=8)
    res = tree.insert((1, 2), now=0)
    tree.insert((7,), now=1)
    tree.lock(res.last_node)
    assert tree.evict(3) == [7]
    assert tree.num_blocks == 2 and len(tree.policy) == 0
    tree.unlock(res.last_node)
    assert tree.evict(3) == [2, 1]


def test_split_by_a_match_re_enters_the_leaf_with_its_new_size() -> None:
    tree = PolicyRadixTree("lru", capacity_blocks=8)
    tree.insert((1, 2, 3, 4), now=0)
    tree.match_prefix((1, 2, 9), now=1)  # splits (1,2,3,4) into (1,2) + (3,4)
    (leaf,) = tree.evictable_leaves()
    assert leaf.run == (3, 4)
    assert tree.policy.used == 2
    tree.check_invariants()


def test_offline_and_trained_policies_are_refused() -> None:
    with pytest.raises(ConfigError, match="next-use"):
        PolicyRadixTree("belady", capacity_blocks=4)
    with pytest.raises(SimulationError, match="takes no priority key"):
        PolicyRadixTree("lru", capacity_blocks=4).evict(1, key="fifo")
    used = create_policy("lru", capacity=4)
    used.on_insert("x")
    with pytest.raises(SimulationError, match="empty policy"):
        PolicyRadixTree(used)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "match", "lock", "unlock", "evict"]),
        st.lists(st.integers(0, 3), min_size=1, max_size=5).map(tuple),
        st.integers(1, 6),
    ),
    max_size=40,
)


@pytest.mark.parametrize("name", LEAF_POLICIES)
@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_every_policy_keeps_the_tree_and_policy_consistent(name: str, ops: list) -> None:
    """Invariants after every op; evict frees exactly min(n, evictable); locks hold."""
    tree = PolicyRadixTree(name, capacity_blocks=8)
    locked = []
    for now, (op, key, n) in enumerate(ops):
        if op == "insert":
            tree.insert(key, now=now)
        elif op == "match":
            tree.match_prefix(key, now=now)
        elif op == "lock":
            res = tree.match_prefix(key, now=now)
            tree.lock(res.last_node)
            locked.append(res.last_node)
        elif op == "unlock" and locked:
            tree.unlock(locked.pop(0))
        elif op == "evict":
            before, evictable = tree.num_blocks, tree.num_evictable_blocks
            out = tree.evict(n)
            assert len(out) == min(n, evictable)
            assert tree.num_blocks == before - len(out)
        tree.check_invariants()
    for node in locked:  # every locked path is still fully cached
        assert tree.peek_prefix_len(node.prefix()) == node.depth
