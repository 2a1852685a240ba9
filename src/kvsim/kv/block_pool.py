"""vLLM-v1-style block pool: fixed-size KV blocks, ref counts, an LRU free queue, a prefix map.

The pool owns ``num_blocks`` :class:`KVBlock` objects, ``blocks[i].block_id == i``, created
lazily: a block that was never handed out ("fresh") has no object yet. Fresh blocks are
logically the front of the free queue in id order — in vLLM's initial queue ``0..n-1`` they
precede every freed block and nothing reorders them — so :meth:`BlockPool.allocate` hands them
out first, creating them then; ``blocks`` and ``free_block_queue`` materialise the rest in
that place. Same ids and order as an eager pool; memory O(blocks ever used), which is what
lets a 10,240-GPU cluster hold one pool per GPU. A block is
either *in use* (``ref_cnt > 0``: one or more requests hold it) or *free* (``ref_cnt == 0``:
it sits in the free queue). A free block keeps its ``block_hash``, so a later request with the
same prefix can still hit it (:meth:`BlockPool.match_prefix` then :meth:`BlockPool.touch`
takes it back out of the queue). Only when :meth:`BlockPool.allocate` pops a free block for
new content is its hash dropped (lazy eviction, counted in ``num_evictions``), and the
optional ``on_evict`` hook gets the hash (offload to lower tiers). The hook hears *every*
evicted block, even one whose hash other blocks still hold: which blocks are popped does not
depend on when in-use blocks were registered, so the hook's calls do not either.

Prefix map — as in vLLM (``dict[hash, dict[block_id, block]]``), a hash may be held by
*several* blocks at once (two requests computed the same block independently).
:meth:`BlockPool.cache_block` always adds the block to its hash's *holders*, and eviction
removes just the evicted block. Lookups (:meth:`BlockPool.get_cached_block`,
:meth:`BlockPool.match_prefix`) return the holder with the smallest ``block_id``, a choice that
does not depend on the order the holders were registered in. Representation, cheap for the
common one-holder case::

    cached_hash_to_block[h]      the primary holder of h: the one with the smallest block_id
    _extra_holders[h]            {block_id: block} of the other holders of h; present only
                                 while h has two or more holders (never empty)

When the primary is evicted, the smallest-id extra holder is promoted. Because a
registration only touches its own block and an eviction only removes the popped block, the
final holder sets do not depend on how registrations on in-use blocks are interleaved with
:meth:`BlockPool.allocate` calls (they commute; ``tests/kv/test_block_pool_props.py``).

Free queue (:class:`FreeBlockQueue`) — an intrusive doubly linked list threaded through the
blocks' own ``prev_free``/``next_free`` fields, between two sentinel blocks (``block_id -1``)::

            popleft() / allocate()                      append() / free()
                  <-- evict first                         freed last -->
    +------+     +------+     +------+           +------+     +------+
    | head | <-> | b3   | <-> | b4   | <-> ... <-> | b1   | <-> | tail |
    +------+     +------+     +------+           +------+     +------+
    sentinel     LRU end                          MRU end     sentinel
                      ^
                      remove(b) unlinks any block in O(1) (touch() on a cache hit)

With sentinels every real block in the queue has both neighbours set, so ``popleft``,
``remove`` and ``append`` are a few pointer moves with no empty/end special cases, and a block
is in the queue iff its ``prev_free`` is not ``None``. No operation allocates beyond the list
it returns.
:meth:`BlockPool.allocate` and :meth:`BlockPool.free` fuse ``popleft_n``/``append`` into their
own loops (same module, same pointer moves) to save a method call per block on the hot path.

Eviction order: :meth:`BlockPool.free` appends blocks whose ref count reaches 0 to the tail in
the order given. The caller passes a request's blocks in *reverse* (as vLLM does), so that the
request's last blocks — the least likely to be shared — are evicted before its first ones.

Invariants (checked by ``tests/kv/test_block_pool_props.py`` after every step):

* ``num_free_blocks + #{b : b.ref_cnt > 0} == num_blocks``; ``ref_cnt >= 0`` always.
* A block is in the free queue iff ``ref_cnt == 0``; it appears there exactly once.
* Every block with ``block_hash == h`` is a holder of ``h`` (the primary or an extra one),
  and every holder of ``h`` has ``block_hash == h``; a block holds at most one hash.
* ``cached_hash_to_block[h]`` is the holder of ``h`` with the smallest ``block_id``;
  ``_extra_holders`` has exactly the hashes with two or more holders, keyed by the other
  holders' ids (all larger than the primary's).
* With caching disabled the prefix map stays empty and no block ever has a hash.

Misuse (double free, negative counts, giving a hashed block a different hash) is a bug in the
caller and raises :class:`~kvsim.errors.SimulationError` at once; "not enough free blocks" is a
normal outcome and is the return value ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kvsim.errors import SimulationError

__all__ = ["BlockPool", "FreeBlockQueue", "KVBlock"]


@dataclass(slots=True, eq=False)
class KVBlock:
    """One fixed-size KV block. Identity-hashed; ``block_id`` is its index in the pool."""

    block_id: int
    ref_cnt: int = 0
    block_hash: int | None = None
    # Intrusive free-list links; both None iff the block is not in a free queue.
    prev_free: KVBlock | None = None
    next_free: KVBlock | None = None

    def __repr__(self) -> str:
        # Never recurse through the links: a repr would otherwise walk the whole list.
        prev_id = self.prev_free.block_id if self.prev_free is not None else None
        next_id = self.next_free.block_id if self.next_free is not None else None
        return (
            f"KVBlock(block_id={self.block_id}, ref_cnt={self.ref_cnt}, "
            f"block_hash={self.block_hash}, prev_free={prev_id}, next_free={next_id})"
        )


class FreeBlockQueue:
    """Intrusive doubly linked list with head/tail sentinels. O(1) popleft, remove, append.

    The list is threaded through the blocks' ``prev_free``/``next_free`` fields, so moving a
    block in or out allocates nothing. Front = next to evict, back = most recently freed.
    """

    __slots__ = ("_head", "_tail", "num_free_blocks")

    def __init__(self, blocks: list[KVBlock]) -> None:
        head = KVBlock(-1)
        tail = KVBlock(-1)
        prev = head
        for block in blocks:
            if block.prev_free is not None:
                raise SimulationError(f"block {block.block_id} is already in a free queue")
            prev.next_free = block
            block.prev_free = prev
            prev = block
        prev.next_free = tail
        tail.prev_free = prev
        self._head = head
        self._tail = tail
        self.num_free_blocks: int = len(blocks)

    def popleft(self) -> KVBlock:
        """Unlink and return the front block. The caller checks ``num_free_blocks`` first."""
        block = self._head.next_free
        if block is self._tail or block is None:
            raise SimulationError("popleft from an empty free block queue")
        nxt = block.next_free
        assert nxt is not None
        self._head.next_free = nxt
        nxt.prev_free = self._head
        block.prev_free = block.next_free = None
        self.num_free_blocks -= 1
        return block

    def popleft_n(self, n: int) -> list[KVBlock]:
        """Unlink and return the first ``n`` blocks in queue order (one relink, not ``n``)."""
        if n > self.num_free_blocks:
            raise SimulationError(
                f"popleft_n({n}) from a free block queue holding {self.num_free_blocks}"
            )
        out: list[KVBlock] = []
        if n <= 0:
            return out
        head = self._head
        block = head.next_free
        for _ in range(n):
            assert block is not None
            out.append(block)
            nxt = block.next_free
            block.prev_free = block.next_free = None
            block = nxt
        assert block is not None
        head.next_free = block
        block.prev_free = head
        self.num_free_blocks -= n
        return out

    def remove(self, block: KVBlock) -> None:
        """Unlink ``block`` from anywhere in the queue."""
        prev = block.prev_free
        nxt = block.next_free
        if prev is None or nxt is None:
            raise SimulationError(f"block {block.block_id} is not in the free block queue")
        prev.next_free = nxt
        nxt.prev_free = prev
        block.prev_free = block.next_free = None
        self.num_free_blocks -= 1

    def append(self, block: KVBlock) -> None:
        """Link ``block`` at the back (evicted last)."""
        if block.prev_free is not None:
            raise SimulationError(f"block {block.block_id} is already in the free block queue")
        tail = self._tail
        last = tail.prev_free
        assert last is not None
        last.next_free = block
        block.prev_free = last
        block.next_free = tail
        tail.prev_free = block
        self.num_free_blocks += 1

    def get_all_free_blocks(self) -> list[KVBlock]:
        """All blocks front to back. O(n): for tests and debugging only."""
        out: list[KVBlock] = []
        block = self._head.next_free
        tail = self._tail
        while block is not None and block is not tail:
            out.append(block)
            block = block.next_free
        return out


class BlockPool:
    """Ref-counted KV blocks with a free queue in eviction order and a prefix map.

    Args:
        num_blocks: blocks in the pool (``>= 0``).
        enable_caching: if False, :meth:`cache_block` is a no-op, so no block ever gets a
            hash, :meth:`match_prefix` returns ``[]`` and nothing is ever evicted.
    """

    __slots__ = (
        "_blocks",
        "_extra_holders",
        "_num_fresh",
        "_queue",
        "cached_hash_to_block",
        "enable_caching",
        "num_blocks",
        "num_evictions",
        "on_evict",
    )

    def __init__(self, num_blocks: int, enable_caching: bool = True) -> None:
        if num_blocks < 0:
            raise SimulationError(f"BlockPool needs num_blocks >= 0, got {num_blocks}")
        self.num_blocks: int = num_blocks
        self.enable_caching: bool = enable_caching
        # Blocks created so far, by id. Blocks never handed out yet ("fresh") are not created:
        # they are logically the front of the free queue, in id order (see the module doc).
        self._blocks: list[KVBlock] = []
        self._num_fresh: int = num_blocks
        self._queue = FreeBlockQueue([])
        # hash -> its primary holder: the smallest-id block holding it (in use or free).
        self.cached_hash_to_block: dict[int, KVBlock] = {}
        # hash -> {block_id: block} of its other holders; only hashes with >= 2 holders.
        self._extra_holders: dict[int, dict[int, KVBlock]] = {}
        self.num_evictions: int = 0
        #: Called by :meth:`allocate` with the hashes of the hashed blocks it reused, in
        #: eviction order; None: nobody listens (offload tiers set it).
        self.on_evict: Callable[[list[int]], None] | None = None

    # ------------------------------------------------------------------ counts

    @property
    def num_free_blocks(self) -> int:
        return self._queue.num_free_blocks + self._num_fresh

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self._queue.num_free_blocks - self._num_fresh

    @property
    def num_created_blocks(self) -> int:
        """Blocks materialised so far (the pool's memory is O(this), not O(num_blocks))."""
        return len(self._blocks)

    @property
    def blocks(self) -> list[KVBlock]:
        """All ``num_blocks`` blocks, ``blocks[i].block_id == i`` (materialises fresh ones)."""
        self._materialise()
        return self._blocks

    @property
    def free_block_queue(self) -> FreeBlockQueue:
        """The free queue with every free block in it (materialises fresh ones; for tests)."""
        self._materialise()
        return self._queue

    def _materialise(self) -> None:
        """Create the fresh blocks and link them, in id order, at the front of the queue."""
        n = self._num_fresh
        if n == 0:
            return
        start = len(self._blocks)
        fresh = [KVBlock(i) for i in range(start, start + n)]
        self._blocks.extend(fresh)
        head = self._queue._head
        first = head.next_free
        assert first is not None
        prev = head
        for block in fresh:
            prev.next_free = block
            block.prev_free = prev
            prev = block
        prev.next_free = first
        first.prev_free = prev
        self._queue.num_free_blocks += n
        self._num_fresh = 0

    @property
    def num_cached_blocks(self) -> int:
        """Distinct hashes registered (a hash held by several blocks counts once)."""
        return len(self.cached_hash_to_block)

    @property
    def num_hashed_blocks(self) -> int:
        """Blocks holding a hash (``>= num_cached_blocks``; O(#hashes with several holders))."""
        return len(self.cached_hash_to_block) + sum(map(len, self._extra_holders.values()))

    # ------------------------------------------------------------------ prefix cache

    def get_cached_block(self, block_hash: int) -> KVBlock | None:
        """The smallest-id block holding ``block_hash``, in use or free, else None.

        No side effect.
        """
        return self.cached_hash_to_block.get(block_hash)

    def get_hash_holders(self, block_hash: int) -> list[KVBlock]:
        """Every block holding ``block_hash``, by increasing ``block_id`` (``[]`` if none)."""
        primary = self.cached_hash_to_block.get(block_hash)
        if primary is None:
            return []
        extra = self._extra_holders.get(block_hash)
        if extra is None:
            return [primary]
        return [primary, *(extra[i] for i in sorted(extra))]

    def match_prefix(self, block_hashes: Sequence[int]) -> list[KVBlock]:
        """Blocks of the longest leading run of ``block_hashes`` present in the prefix map.

        For each hash the smallest-id holder is returned. No side effect: the caller
        :meth:`touch`-es the blocks it decides to use.
        """
        hash_to_block = self.cached_hash_to_block
        out: list[KVBlock] = []
        for block_hash in block_hashes:
            block = hash_to_block.get(block_hash)
            if block is None:
                break
            out.append(block)
        return out

    def cache_block(self, block: KVBlock, block_hash: int) -> None:
        """Register a full block as a holder of ``block_hash``.

        The block is added even if other blocks already hold the hash (lookups then return
        the smallest-id holder). Re-registering a block under its own hash is a no-op;
        giving a hashed block a different hash raises :class:`SimulationError`.
        """
        if not self.enable_caching:
            return
        current = block.block_hash
        if current is not None:
            if current != block_hash:
                raise SimulationError(
                    f"block {block.block_id} already cached as {current}, not {block_hash}"
                )
            return
        block.block_hash = block_hash
        hash_to_block = self.cached_hash_to_block
        primary = hash_to_block.get(block_hash)
        if primary is None:
            hash_to_block[block_hash] = block
            return
        extra = self._extra_holders.get(block_hash)
        if extra is None:
            extra = self._extra_holders[block_hash] = {}
        if block.block_id < primary.block_id:
            hash_to_block[block_hash] = block
            extra[primary.block_id] = primary
        else:
            extra[block.block_id] = block

    def cache_blocks(
        self, blocks: Sequence[KVBlock], block_hashes: Sequence[int], start: int, stop: int
    ) -> None:
        """``cache_block(blocks[j], block_hashes[j])`` for ``start <= j < stop`` (one call)."""
        if not self.enable_caching:
            return
        hash_to_block = self.cached_hash_to_block
        for j in range(start, stop):
            block = blocks[j]
            block_hash = block_hashes[j]
            if block.block_hash is not None or block_hash in hash_to_block:
                self.cache_block(block, block_hash)  # the checked path for the rare cases
                continue
            hash_to_block[block_hash] = block
            block.block_hash = block_hash

    def reset_prefix_cache(self) -> bool:
        """Drop every hash. Refused (returns False) while any block is in use, as in vLLM.

        Dropped hashes are not counted in ``num_evictions`` (that counts reuse only).
        """
        if self.num_free_blocks != self.num_blocks:
            return False
        for block in self.cached_hash_to_block.values():
            block.block_hash = None
        for extra in self._extra_holders.values():
            for block in extra.values():
                block.block_hash = None
        self.cached_hash_to_block.clear()
        self._extra_holders.clear()
        return True

    # ------------------------------------------------------------------ ref counting

    def touch(self, blocks: Sequence[KVBlock]) -> None:
        """Take one more reference on each block (a prefix hit); free ones leave the queue."""
        queue = self._queue
        for block in blocks:
            if block.ref_cnt == 0:
                queue.remove(block)
            block.ref_cnt += 1

    def bind(self, blocks: list[KVBlock]) -> None:
        """A request's block list after :meth:`touch` + :meth:`allocate` (a hook for prefix
        indexes that lock per request, e.g. the engine's radix pool); no-op here."""

    def allocate(self, num_blocks: int) -> list[KVBlock] | None:
        """Pop ``num_blocks`` blocks from the front of the free queue, each with ``ref_cnt`` 1.

        Returns None, with no side effect, if fewer are free. A popped block that still holds
        a hash is removed from that hash's holders (counted in ``num_evictions``); other
        holders of the hash stay cached.
        """
        queue = self._queue
        num_fresh = self._num_fresh
        if num_blocks > queue.num_free_blocks + num_fresh:
            return None
        if num_blocks < 0:
            raise SimulationError(f"allocate({num_blocks}): negative block count")
        if num_fresh:  # never-used blocks are the front of the queue: hand them out first
            take = num_fresh if num_blocks > num_fresh else num_blocks
            start = len(self._blocks)
            fresh = [KVBlock(i, 1) for i in range(start, start + take)]
            self._blocks.extend(fresh)
            self._num_fresh = num_fresh - take
            if take == num_blocks:
                return fresh
            rest = self._allocate_queued(num_blocks - take)
            fresh.extend(rest)
            return fresh
        return self._allocate_queued(num_blocks)

    def _allocate_queued(self, num_blocks: int) -> list[KVBlock]:
        """Pop ``num_blocks`` (<= the queue's length) created blocks from the queue front."""
        queue = self._queue
        # Fused FreeBlockQueue.popleft_n + per-block bookkeeping: one walk, one relink.
        hash_to_block = self.cached_hash_to_block
        extra_holders = self._extra_holders
        head = queue._head
        block: Any = head.next_free  # a real block on every iteration (see below)
        blocks: list[KVBlock] = []
        append = blocks.append
        evicted = 0
        gone: list[int] | None = [] if self.on_evict is not None else None
        # num_free_blocks >= num_blocks, so the walk never reaches the tail sentinel
        for _ in range(num_blocks):
            append(block)
            nxt = block.next_free
            block.prev_free = block.next_free = None
            block_hash = block.block_hash
            if block_hash is not None:
                # Fast path: the block is the hash's only holder.
                if hash_to_block.get(block_hash) is block and block_hash not in extra_holders:
                    del hash_to_block[block_hash]
                else:
                    self._evict_shared(block, block_hash)
                if gone is not None:
                    gone.append(block_hash)
                block.block_hash = None
                evicted += 1
            block.ref_cnt = 1
            block = nxt
        self.num_evictions += evicted
        assert block is not None
        head.next_free = block
        block.prev_free = head
        queue.num_free_blocks -= num_blocks
        if gone:
            assert self.on_evict is not None
            self.on_evict(gone)
        return blocks

    def free(self, blocks: Sequence[KVBlock]) -> None:
        """Drop one reference on each block; those reaching 0 go to the queue tail in order.

        Pass a request's blocks in reverse so its tail blocks are evicted first. Freeing a
        block whose ref count is already 0 raises :class:`SimulationError` and leaves the
        pool exactly as it was before the call.
        """
        queue = self._queue
        tail = queue._tail
        num_appended = 0
        for i, block in enumerate(blocks):
            ref_cnt = block.ref_cnt
            if ref_cnt <= 0:
                queue.num_free_blocks += num_appended
                self._undo_free(blocks, i)
                raise SimulationError(f"double free of block {block.block_id}")
            block.ref_cnt = ref_cnt - 1
            if ref_cnt == 1:
                # Fused FreeBlockQueue.append (no method call per block).
                last = tail.prev_free
                assert last is not None
                last.next_free = block
                block.prev_free = last
                block.next_free = tail
                tail.prev_free = block
                num_appended += 1
        queue.num_free_blocks += num_appended

    # ------------------------------------------------------------------ internals

    def _evict_shared(self, block: KVBlock, block_hash: int) -> None:
        """Remove ``block`` from the holders of ``block_hash`` when it is not the only one
        (the caller clears ``block.block_hash``). Promotes the smallest-id extra holder if
        ``block`` was the primary."""
        hash_to_block = self.cached_hash_to_block
        primary = hash_to_block.get(block_hash)
        extra = self._extra_holders.get(block_hash)
        if primary is None or extra is None:
            raise SimulationError(f"block {block.block_id} had hash {block_hash} not mapped to it")
        if primary is block:
            new_id = min(extra)
            hash_to_block[block_hash] = extra.pop(new_id)
        elif extra.pop(block.block_id, None) is not block:
            raise SimulationError(f"block {block.block_id} had hash {block_hash} not mapped to it")
        if not extra:
            del self._extra_holders[block_hash]

    def _undo_free(self, blocks: Sequence[KVBlock], n: int) -> None:
        """Roll back the first ``n`` decrements of a failed :meth:`free` (error path only)."""
        queue = self._queue
        for j in range(n - 1, -1, -1):
            block = blocks[j]
            if block.ref_cnt == 0:
                queue.remove(block)  # it was appended last, so order is restored
            block.ref_cnt += 1
