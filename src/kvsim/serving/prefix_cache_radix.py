"""``cache.index: radix`` -- an SGLang-style radix tree over an instance's cached KV blocks.

:class:`RadixBlockPool` is a :class:`~kvsim.kv.block_pool.BlockPool` whose cached blocks are
held by a :class:`~kvsim.kv.radix_policy.PolicyRadixTree` instead of the LRU free queue:

* the tree holds one block per cached hash (its value); the pool's hash map mirrors the
  tree's keys, so :meth:`match_prefix` stays a read-only dict walk (prefix-chained hashes);
* every request locks its path: :meth:`touch` locks the matched prefix at admission
  (:meth:`bind` files the lock under the request's block list), :meth:`cache_blocks` moves the
  lock to the end of the newly registered path, :meth:`free` unlocks it;
* a block whose hash is already cached by another block (two requests computed it) is
  deduplicated on registration: the request adopts the cached copy and frees its own;
* the free queue holds only hash-less blocks; ``num_free_blocks`` adds the tree's unlocked
  blocks, and :meth:`allocate` evicts unlocked leaves (ranked by ``cache.eviction_policy``,
  whole, deepest block first; extra blocks join the free queue) when the queue runs short;
  evicted hashes go to ``on_evict`` (demotion to the lower tiers).

Registration timing (SGLang): prompt blocks when their prefill chunk ends, blocks filled by
decode when the request releases its KV (finish or preemption) or takes part in a mixed
step -- never inside a fast-forwarded decode span, so fast-forward and exact stepping apply
the same tree operations in the same order.

Invariants (:meth:`RadixBlockPool.check`): a tree block is never in the free queue; a block
with ``ref_cnt > 0`` held by the tree is locked; ``num_free_blocks + num_used_blocks ==
num_blocks``; the tree's keys equal the hash map's keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool, KVBlock
from kvsim.kv.radix import RadixNode
from kvsim.kv.radix_policy import PolicyRadixTree

__all__ = ["RadixBlockPool"]


class _LeafTree(PolicyRadixTree):
    """:class:`PolicyRadixTree` that evicts whole leaves (as SGLang does)."""

    __slots__ = ()

    def evict_leaves(self, num_blocks: int) -> int:
        """Evict whole unlocked leaves, in the policy's order, until at least ``num_blocks``
        blocks are gone (or nothing is evictable); returns the blocks evicted.

        Whole leaves make the result independent of how a demand is split into calls
        (``evict_leaves(2)`` frees what two ``evict_leaves(1)`` free), which keeps
        fast-forward (one allocation per span) equal to exact stepping (one per step)."""
        evicted: list[int] = []
        remaining = num_blocks
        root = self._root
        policy = self._policy
        while remaining > 0:
            node = policy.evict()
            if node is None:
                break
            if not isinstance(node, RadixNode) or not node.in_heap:
                raise SimulationError(f"policy {policy.name!r} evicted a non-leaf {node!r}")
            node.in_heap = False
            self._num_live -= 1
            del self._sizes[node]
            run = node.run
            self._report(run, node.values, evicted)
            parent = node.parent
            assert parent is not None
            del parent.children[run[0]]
            node.parent = None
            self._num_blocks -= len(run)
            self._num_nodes -= 1
            remaining -= len(run)
            if parent is not root and not parent.children and parent.lock_ref == 0:
                self._push(parent)
        return len(evicted)


class RadixBlockPool(BlockPool):
    """Block pool whose prefix cache is a locked radix tree (module doc)."""

    __slots__ = ("_gone", "_locks", "_pending", "tree")

    def __init__(self, num_blocks: int, policy: str = "lru") -> None:
        super().__init__(num_blocks, enable_caching=True)
        self.tree = _LeafTree(
            policy, capacity_blocks=max(num_blocks, 1), on_evict=self._tree_evicted
        )
        self._locks: dict[int, RadixNode] = {}  # id(a request's block list) -> its lock
        self._pending: RadixNode | None = None  # lock taken by touch(), not bound yet
        self._gone: list[int] = []

    # ------------------------------------------------------------------ counts
    @property
    def num_free_blocks(self) -> int:
        return self._queue.num_free_blocks + self._num_fresh + self.tree.num_evictable_blocks

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self.num_free_blocks

    # ------------------------------------------------------------------ requests
    def touch(self, blocks: Sequence[KVBlock]) -> None:
        """Take a reference on a matched prefix (tree blocks) and lock its path."""
        for block in blocks:
            block.ref_cnt += 1
        if blocks:
            res = self.tree.match_prefix([b.block_hash for b in blocks])  # type: ignore[misc]
            if res.num_matched_blocks != len(blocks):
                raise SimulationError("radix: a matched prefix is not in the tree")
            self.tree.lock(res.last_node)
            self._pending = res.last_node

    def bind(self, blocks: list[KVBlock]) -> None:
        """File the lock of the last :meth:`touch` under the request's block list."""
        if self._pending is not None:
            self._locks[id(blocks)] = self._pending
            self._pending = None

    def cache_block(self, block: KVBlock, block_hash: int) -> None:
        raise SimulationError("radix: register blocks with cache_blocks (path locks)")

    def cache_blocks(
        self, blocks: Sequence[KVBlock], block_hashes: Sequence[int], start: int, stop: int
    ) -> None:
        """Register ``blocks[start:stop]`` (deduplicating against cached copies) and move the
        request's lock to the end of its path ``block_hashes[:stop]``."""
        if stop <= 0:
            return
        assert isinstance(blocks, list)
        get = self.cached_hash_to_block.get
        for j in range(start, stop):
            h = block_hashes[j]
            b = blocks[j]
            cur = get(h)
            if cur is None:
                if b.block_hash is not None:
                    raise SimulationError(f"radix: block {b.block_id} already cached")
                b.block_hash = h
                self.cached_hash_to_block[h] = b
            elif cur is not b:  # computed twice: adopt the cached copy, release ours
                cur.ref_cnt += 1
                blocks[j] = cur
                b.ref_cnt -= 1
                if b.ref_cnt == 0:
                    self._queue.append(b)
        node = self.tree.insert(tuple(block_hashes[:stop]), blocks[:stop]).last_node
        tree = self.tree
        tree.lock(node)
        old = self._locks.get(id(blocks))
        if old is not None:
            tree.unlock(old)
        self._locks[id(blocks)] = node

    def free(self, blocks: Sequence[KVBlock]) -> None:
        """Unlock the request's path; hash-less blocks reaching ref 0 join the free queue
        (cached ones stay in the tree, evictable once unlocked)."""
        node = self._locks.pop(id(blocks), None)
        if node is not None:
            self.tree.unlock(node)
        queue = self._queue
        for block in blocks:
            if block.ref_cnt <= 0:
                raise SimulationError(f"double free of block {block.block_id}")
            block.ref_cnt -= 1
            if block.ref_cnt == 0 and block.block_hash is None:
                queue.append(block)

    def allocate(self, num_blocks: int) -> list[KVBlock] | None:
        """Like :meth:`BlockPool.allocate`, evicting unlocked tree leaves when the free queue
        runs short (their hashes go to ``on_evict``). None, with no change, if too few."""
        short = num_blocks - (self._queue.num_free_blocks + self._num_fresh)
        if short > 0:
            if short > self.tree.num_evictable_blocks:
                return None
            self.tree.evict_leaves(short)
            gone = self._gone
            self._gone = []
            if self.on_evict is not None:
                self.on_evict(gone)
        return super().allocate(num_blocks)

    def _tree_evicted(self, block_hash: int, value: object) -> None:
        block = value
        assert isinstance(block, KVBlock)
        if block.ref_cnt != 0:
            raise SimulationError(f"radix evicted block {block.block_id} in use")
        del self.cached_hash_to_block[block_hash]
        block.block_hash = None
        self._queue.append(block)
        self.num_evictions += 1
        self._gone.append(block_hash)

    def check(self) -> None:
        """Raise :class:`SimulationError` if an invariant of the module doc fails (tests)."""
        self.tree.check_invariants()
        keys = {n_hash for n in self.tree.iter_nodes() for n_hash in n.run}
        if keys != set(self.cached_hash_to_block):
            raise SimulationError("radix: tree keys differ from the hash map")
        for node in self.tree.iter_nodes():
            for b in node.values or ():
                assert isinstance(b, KVBlock)
                if b.prev_free is not None:
                    raise SimulationError(f"radix: tree block {b.block_id} is in the free queue")
                if b.ref_cnt > 0 and node.lock_ref == 0:
                    raise SimulationError(f"radix: block {b.block_id} in use but unlocked")
