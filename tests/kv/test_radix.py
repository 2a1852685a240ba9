"""Scripted tests of the radix prefix index: exact tree shapes, match lengths, locks, eviction."""

from __future__ import annotations

from typing import Any

import pytest

from kvsim.errors import SimulationError
from kvsim.kv.radix import PRIORITY_KEYS, RadixNode, RadixTree


def docstring_tree() -> RadixTree:
    """The tree drawn in the module docstring, inserted at times 1, 2, 3."""
    tree = RadixTree()
    tree.insert((1, 2, 3, 4), now=1)
    tree.insert((1, 2, 5), now=2)
    tree.insert((1, 2, 3, 6, 7), now=3)
    tree.check_invariants()
    return tree


# --------------------------------------------------------------------------- shapes


def test_empty_tree() -> None:
    tree = RadixTree()
    assert (tree.num_blocks, tree.num_evictable_blocks, tree.num_nodes, len(tree)) == (0, 0, 0, 0)
    result = tree.match_prefix((1, 2), now=1)
    assert result.num_matched_blocks == 0
    assert result.last_node is tree.root
    assert result.nodes == []
    assert tree.evict(5) == []
    assert tree.shape() == {}
    tree.check_invariants()


def test_insert_builds_the_docstring_tree_with_exact_splits() -> None:
    tree = RadixTree()
    r1 = tree.insert((1, 2, 3, 4), now=1)
    assert (r1.num_new_blocks, r1.num_matched_blocks, r1.last_node.run) == (4, 0, (1, 2, 3, 4))
    assert tree.shape() == {(1, 2, 3, 4): {}}
    r2 = tree.insert((1, 2, 5), now=2)
    assert (r2.num_new_blocks, r2.num_matched_blocks, r2.last_node.run) == (1, 2, (5,))
    assert tree.shape() == {(1, 2): {(3, 4): {}, (5,): {}}}
    r3 = tree.insert((1, 2, 3, 6, 7), now=3)
    assert (r3.num_new_blocks, r3.num_matched_blocks, r3.last_node.run) == (2, 3, (6, 7))
    assert tree.shape() == {(1, 2): {(3,): {(4,): {}, (6, 7): {}}, (5,): {}}}
    assert (tree.num_blocks, tree.num_nodes, len(tree)) == (7, 5, 7)
    assert r3.last_node.depth == 5
    assert r3.last_node.prefix() == (1, 2, 3, 6, 7)
    tree.check_invariants()


def test_split_keeps_the_original_node_as_the_tail() -> None:
    tree = RadixTree()
    leaf = tree.insert((1, 2, 3, 4), now=1).last_node
    tree.insert((1, 2, 9), now=2)
    assert leaf.run == (3, 4)
    assert leaf.depth == 4
    assert leaf.prefix() == (1, 2, 3, 4)
    assert leaf.parent is not None and leaf.parent.run == (1, 2)
    assert leaf.parent.last_access == 2  # the head was on the new insert's path
    assert leaf.last_access == 1  # the tail was not


def test_insert_of_a_cached_prefix_splits_but_adds_nothing() -> None:
    tree = RadixTree()
    tree.insert((1, 2, 3), now=1)
    result = tree.insert((1, 2), now=2)
    assert (result.num_new_blocks, result.num_matched_blocks) == (0, 2)
    assert result.last_node.run == (1, 2)
    assert tree.shape() == {(1, 2): {(3,): {}}}
    assert tree.num_blocks == 3
    again = tree.insert((1, 2, 3), now=3)
    assert (again.num_new_blocks, again.num_matched_blocks) == (0, 3)
    assert tree.insert((), now=4).num_new_blocks == 0
    tree.check_invariants()


def test_extending_a_leaf_adds_a_child_rather_than_merging() -> None:
    tree = RadixTree()
    tree.insert((1, 2), now=1)
    tree.insert((1, 2, 3, 4), now=2)
    assert tree.shape() == {(1, 2): {(3, 4): {}}}
    tree.insert([7, 8, 9], now=3)  # a list works too
    assert tree.shape() == {(1, 2): {(3, 4): {}}, (7, 8, 9): {}}


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("query", "matched", "last_run"),
    [
        ((1, 2, 3, 4), 4, (4,)),
        ((1, 2, 3, 6, 7, 8), 5, (6, 7)),
        ((1, 2, 5), 3, (5,)),
        ((1, 2), 2, (1, 2)),
        ((1, 9), 1, (1,)),  # ends inside (1, 2): split there
        ((1, 2, 3, 6), 4, (6,)),  # ends inside (6, 7): split there
        ((2, 1), 0, ()),
        ((), 0, ()),
    ],
)
def test_match_lengths_and_last_node(query: tuple[int, ...], matched: int, last_run: Any) -> None:
    tree = docstring_tree()
    assert tree.peek_prefix_len(query) == matched
    result = tree.match_prefix(query, now=10)
    assert result.num_matched_blocks == matched
    assert result.last_node.run == last_run
    assert result.last_node.depth == matched
    assert sum(len(n.run) for n in result.nodes) == matched
    assert tree.num_blocks == 7
    tree.check_invariants()


def test_match_splits_exactly_at_the_end_of_the_match() -> None:
    tree = docstring_tree()
    tree.match_prefix((1, 2, 3, 6), now=4)
    assert tree.shape() == {(1, 2): {(3,): {(4,): {}, (6,): {(7,): {}}}, (5,): {}}}
    tree.match_prefix((1, 9), now=5)
    assert tree.shape() == {(1,): {(2,): {(3,): {(4,): {}, (6,): {(7,): {}}}, (5,): {}}}}
    assert (tree.num_blocks, tree.num_nodes) == (7, 7)


def test_match_marks_the_path_accessed() -> None:
    tree = docstring_tree()
    result = tree.match_prefix((1, 2, 3, 4), now=7)
    assert [(n.run, n.last_access, n.num_accesses) for n in result.nodes] == [
        ((1, 2), 7, 4),
        ((3,), 7, 3),
        ((4,), 7, 2),
    ]
    untouched = {n.run: n.last_access for n in tree.iter_nodes()}
    assert untouched[(5,)] == 2 and untouched[(6, 7)] == 3


def test_peek_changes_nothing() -> None:
    tree = docstring_tree()
    before = [(n.run, n.last_access, n.num_accesses) for n in tree.iter_nodes()]
    assert tree.peek_prefix_len((1, 2, 3, 6, 9)) == 4
    assert tree.peek_prefix_len([1, 9]) == 1
    assert [(n.run, n.last_access, n.num_accesses) for n in tree.iter_nodes()] == before


def test_internal_clock_when_now_is_omitted() -> None:
    tree = RadixTree()
    a = tree.insert((1,)).last_node
    b = tree.insert((2,)).last_node
    tree.match_prefix((1,))
    assert (a.last_access, b.last_access) == (3.0, 2.0)
    assert tree.evict(1) == [2]


# --------------------------------------------------------------------------- values


def test_values_are_stored_per_block_and_kept_for_cached_blocks() -> None:
    tree = RadixTree()
    tree.insert((1, 2, 3), value_per_block=["a", "b", "c"], now=1)
    tree.insert((1, 2, 4), value_per_block=["X", "Y", "d"], now=2)  # a, b are kept
    tree.insert((1, 2, 4, 5), now=3)  # no value for 5
    assert tree.match_prefix((1, 2, 3), now=4).values() == ["a", "b", "c"]
    assert tree.match_prefix((1, 2, 4, 5), now=5).values() == ["a", "b", "d", None]
    assert tree.match_prefix((1,), now=6).values() == ["a"]  # after a split
    tree.check_invariants()


def test_value_count_must_match_hash_count() -> None:
    tree = RadixTree()
    with pytest.raises(SimulationError, match="2 values for 3 block hashes"):
        tree.insert((1, 2, 3), value_per_block=[0, 1])
    assert tree.num_blocks == 0


def test_on_evict_reports_hash_and_value_deepest_first() -> None:
    seen: list[tuple[int, object]] = []
    tree = RadixTree(on_evict=lambda h, v: seen.append((h, v)))
    tree.insert((1, 2, 3), value_per_block=[10, 20, 30], now=1)
    tree.insert((1, 4), now=2)
    assert tree.evict(2) == [3, 2]
    assert seen == [(3, 30), (2, 20)]
    assert tree.evict(5) == [4, 1]
    assert seen[2:] == [(4, None), (1, 10)]


# --------------------------------------------------------------------------- locking


def test_lock_counts_the_whole_path_and_unlock_undoes_it() -> None:
    tree = docstring_tree()
    node = tree.match_prefix((1, 2, 3, 6, 7), now=4).last_node
    tree.lock(node)
    tree.lock(node)
    locks = {n.run: n.lock_ref for n in tree.iter_nodes()}
    assert locks == {(1, 2): 2, (3,): 2, (4,): 0, (6, 7): 2, (5,): 0}
    assert (tree.num_locked_blocks, tree.num_evictable_blocks) == (5, 2)
    tree.check_invariants()
    tree.unlock(node)
    assert tree.num_evictable_blocks == 2
    tree.unlock(node)
    assert (tree.num_locked_blocks, tree.num_evictable_blocks) == (0, 7)
    assert all(n.lock_ref == 0 for n in tree.iter_nodes())
    tree.check_invariants()


def test_locked_path_is_never_evicted() -> None:
    tree = docstring_tree()
    node = tree.match_prefix((1, 2, 3, 4), now=1.5).last_node  # keep LRU order as inserted
    tree.lock(node)
    assert tree.evict(100) == [5, 7, 6]
    assert tree.shape() == {(1, 2): {(3,): {(4,): {}}}}
    assert (tree.num_blocks, tree.num_evictable_blocks) == (4, 0)
    tree.unlock(node)
    assert tree.num_evictable_blocks == 4
    assert tree.evict(100) == [4, 3, 2, 1]
    assert tree.num_blocks == 0
    tree.check_invariants()


def test_split_of_a_locked_node_keeps_the_path_locked() -> None:
    tree = RadixTree()
    node = tree.insert((1, 2, 3, 4), now=1).last_node
    tree.lock(node)
    tree.insert((1, 2, 9), now=2)  # splits the locked node
    head = node.parent
    assert head is not None and (head.run, head.lock_ref, node.lock_ref) == ((1, 2), 1, 1)
    assert tree.num_locked_blocks == 4
    assert tree.evict(10) == [9]
    tree.unlock(node)
    assert head.lock_ref == 0
    assert tree.evict(10) == [4, 3, 2, 1]
    tree.check_invariants()


def test_new_leaf_under_a_locked_node_is_evictable() -> None:
    tree = RadixTree()
    node = tree.insert((1, 2), now=1).last_node
    tree.lock(node)
    tree.insert((1, 2, 3), now=2)
    assert tree.num_evictable_blocks == 1
    assert tree.evict(5) == [3]
    assert tree.shape() == {(1, 2): {}}


def test_lock_misuse_raises() -> None:
    tree = RadixTree()
    node = tree.insert((1, 2), now=1).last_node
    with pytest.raises(SimulationError, match="not locked"):
        tree.unlock(node)
    tree.lock(tree.root)  # no-ops
    tree.unlock(tree.root)
    assert tree.evict(2) == [2, 1]
    assert node.parent is None
    with pytest.raises(SimulationError, match="evicted"):
        tree.lock(node)
    tree.check_invariants()


# --------------------------------------------------------------------------- eviction


def test_leaf_only_lru_eviction_order() -> None:
    tree = docstring_tree()
    tree.match_prefix((1, 2, 5), now=4)
    # leaves by last access: (4,)@1, (6, 7)@3, (5,)@4; then (3,) becomes a leaf @3
    assert tree.evict(1) == [4]
    assert tree.shape() == {(1, 2): {(3,): {(6, 7): {}}, (5,): {}}}
    assert tree.evict(3) == [7, 6, 3]
    assert tree.shape() == {(1, 2): {(5,): {}}}
    assert tree.evict(3) == [5, 2, 1]
    assert (tree.num_blocks, tree.num_nodes, tree.shape()) == (0, 0, {})
    tree.check_invariants()


def test_parent_becomes_a_leaf_only_when_all_children_are_gone() -> None:
    tree = RadixTree()
    tree.insert((1, 2), now=1)
    tree.insert((1, 2, 3), now=5)
    tree.insert((1, 2, 4), now=6)
    tree.insert((9,), now=7)
    # (1, 2) was accessed at 6 (< 7), but it has children until both are gone
    assert tree.evict(3) == [3, 4, 2]
    assert tree.shape() == {(1,): {}, (9,): {}}


def test_partial_leaf_eviction_frees_exactly_n() -> None:
    tree = RadixTree()
    leaf = tree.insert((1, 2, 3, 4, 5), value_per_block="abcde", now=1).last_node
    tree.insert((9, 8), now=2)
    assert tree.evict(2) == [5, 4]
    assert (leaf.run, leaf.depth, leaf.values) == ((1, 2, 3), 3, ("a", "b", "c"))
    assert tree.num_blocks == 5
    assert tree.peek_prefix_len((1, 2, 3, 4, 5)) == 3
    tree.check_invariants()
    assert tree.evict(4) == [3, 2, 1, 8]
    assert tree.shape() == {(9,): {}}
    assert tree.num_blocks == 1
    tree.check_invariants()


def test_evict_more_than_evictable_returns_what_there_is() -> None:
    tree = RadixTree()
    tree.insert((1, 2), now=1)
    locked = tree.insert((3, 4), now=2).last_node
    tree.lock(locked)
    assert tree.evict(10) == [2, 1]
    assert tree.evict(10) == []
    assert tree.evict(0) == []
    assert tree.num_blocks == 2


def test_fifo_and_lru_differ_on_a_reused_leaf() -> None:
    def build(priority: str) -> RadixTree:
        tree = RadixTree(priority=priority)
        tree.insert((1,), now=1)
        tree.insert((2,), now=2)
        tree.match_prefix((1,), now=3)
        return tree

    assert build("lru").evict(1) == [2]
    assert build("fifo").evict(1) == [1]
    assert build("mru").evict(1) == [1]


def test_lfu_and_deepest_keys() -> None:
    tree = RadixTree(priority="lfu")
    tree.insert((1,), now=1)
    tree.insert((2, 3, 4), now=2)
    tree.match_prefix((1,), now=3)
    tree.match_prefix((1,), now=4)
    assert tree.evict(1) == [4]  # (2, 3, 4) accessed once, (1,) three times
    assert tree.evict(1, key="deepest") == [3]  # re-keyed; (2, 3) is deepest
    assert tree.evict(1) == [2]


def test_custom_callable_and_policy_object_keys() -> None:
    class BiggestHashFirst:
        def priority(self, node: RadixNode) -> Any:
            return -node.run[-1]

    tree = RadixTree()
    for h in (5, 1, 9, 3):
        tree.insert((h,))
    assert tree.evict(2, key=BiggestHashFirst()) == [9, 5]
    assert tree.evict(1, key=lambda n: n.run[-1]) == [1]
    assert tree.evict(1) == [3]


def test_unknown_priority_name_lists_the_valid_ones() -> None:
    with pytest.raises(SimulationError, match="valid: " + ", ".join(sorted(PRIORITY_KEYS))):
        RadixTree(priority="nope")


def test_heap_stays_compact_under_repeated_access() -> None:
    tree = RadixTree()
    for h in range(10):
        tree.insert((h, h + 100))
    for t in range(5000):
        tree.match_prefix((t % 10, t % 10 + 100))
    assert len(tree._heap) <= 2 * 10 + 64
    assert len(tree.evictable_leaves()) == 10
    assert tree.evict(3) == [100, 0, 101]
    tree.check_invariants()


def test_split_rekeys_a_leaf_whose_run_got_shorter() -> None:
    tree = RadixTree(priority=lambda n: len(n.run))  # shortest run first
    tree.insert((1, 2, 3, 4))
    tree.insert((5, 6, 7))
    tree.insert((1, 2, 9))  # (1, 2, 3, 4) -> (1, 2) + (3, 4): the tail now has priority 2
    assert tree.evict(1) == [9]
    assert tree.evict(2) == [4, 3]
    assert tree.evict(3) == [2, 1, 7]  # (1, 2) became a leaf of priority 2


def test_same_priority_name_does_not_rekey() -> None:
    tree = RadixTree(priority="lru")
    tree.insert((1,))
    heap = tree._heap
    tree.evict(0, key="".join(["l", "r", "u"]))  # equal, not identical
    assert tree._heap is heap
