"""Synthetic workload generator: arrivals, lengths, shared system prompts, multi-turn sessions.

Every request belongs to a *session* (a conversation); without ``sessions`` each session has
exactly one turn. A session's token stream is::

    [system prompt P][msg 1][out 1][msg 2][out 2] ... [msg T][out T]
    |<--- turn 1 prompt --->|
    |<------------- turn 2 prompt ------------>|

Turn ``k``'s prompt is everything up to and including message ``k``; its output is
``out k``. The system prompt (``shared_prefix``, chosen per session) has ``P`` tokens, or is
absent (``P = 0``). Each segment has a content id (system prompt ``j`` -> ``j``; message and
output segments -> unique ids after them), and block hashes come from
:func:`~kvsim.workload.hashing.segment_block_hashes`, so:

* two requests with the same system prompt share exactly their first ``floor(P / bs)`` hashes
  (the next block holds a session-unique message);
* within a session, block ``i`` has the same hash in every turn that has it: turn ``k + 1``
  starts with all ``floor((prompt_k + output_k) / bs)`` full blocks of turn ``k``'s
  prompt + output (the conversation so far), not only with turn ``k``'s prompt blocks.

A request that a later turn of its session follows also carries ``output_block_hashes``: the
hashes of the full blocks of its conversation ``prompt + output`` past its prompt blocks
(``(prompt + output) // bs - prompt // bs`` of them), by the same rule (a block whose last
token is in ``out k`` gets that output segment's id). So for every non-last turn ``k``,
``block_hashes + output_block_hashes`` is exactly turn ``k + 1``'s leading
``(prompt_k + output_k) // bs`` hashes. The engine only needs them so the next turn can hit
blocks filled during decode, so a session's last turn, and every request of a workload
without ``sessions``, gets ``output_block_hashes == ()`` (its output blocks could be hit by
nothing). An output hash appears in no prompt but those of its own session's later turns.

Randomness is drawn from ``rng`` in a fixed order (turn counts, session start gaps, message
lengths, output lengths, prefix use, prefix choice, think times), so the same config and
seed give equal request lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kvsim.config.workload import SyntheticWorkload
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.hashing import leading_slices, segment_block_hashes
from kvsim.workload.lengths import sample_lengths
from kvsim.workload.request import Request

__all__ = ["generate"]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Per-request arrays in session-major order (session 0's turns, then session 1's ...).

    ``session`` and ``prefix_*`` index sessions; ``seg_end`` holds the cumulative end of every
    message/output segment over all sessions (segment ``2r`` is request ``r``'s message,
    ``2r + 1`` its output); ``conv_start`` is the offset in ``seg_end`` coordinates where
    each session's segments start.
    """

    session: np.ndarray  # int64 [n]
    first: np.ndarray  # int64 [m], index of each session's first request
    arrival_s: np.ndarray  # float64 [n]
    prompt: np.ndarray  # int64 [n]
    output: np.ndarray  # int64 [n]
    prefix_tokens: np.ndarray  # int64 [m], 0 = no system prompt
    prefix_id: np.ndarray  # int64 [m], -1 = none
    seg_end: np.ndarray  # int64 [2n]
    conv_start: np.ndarray  # int64 [m]
    num_prefixes: int


def generate(cfg: SyntheticWorkload, rng: np.random.Generator) -> list[Request]:
    """Generate exactly ``cfg.num_requests`` requests, sorted by arrival (stable).

    Request ids are ``0 .. n - 1`` in arrival order; ``session_id`` is the session index
    (sessions numbered by start time) when ``cfg.sessions`` is set, else ``-1``. Session
    starts follow ``cfg.arrival`` at ``cfg.rate`` with the first at t = 0; turn ``k + 1``
    arrives an exponential think time (mean ``think_time_s``) after turn ``k``'s arrival.
    All hashes are synthesised (``synthetic_hashes=True``) at ``cfg.hash_block_size``, for
    the prompt (``block_hashes``) and, only for a turn a later turn of its session follows,
    for the blocks completed by the output (``output_block_hashes``, which then equal the
    next turn's prompt hashes at those positions). A session's last turn and every request
    without ``cfg.sessions`` get ``output_block_hashes == ()``.
    """
    layout = _layout(cfg, rng)
    hashes, output_hashes = _block_hashes(layout, cfg.hash_block_size)
    order = np.argsort(layout.arrival_s, kind="stable")
    session_ids = layout.session if cfg.sessions is not None else np.full_like(layout.session, -1)
    arrivals = layout.arrival_s.tolist()
    prompts = layout.prompt.tolist()
    outputs = layout.output.tolist()
    sessions = session_ids.tolist()
    return [
        Request(
            request_id=new_id,
            arrival_s=arrivals[r],
            prompt_tokens=prompts[r],
            output_tokens=outputs[r],
            session_id=sessions[r],
            block_hashes=hashes[r],
            hash_block_size=cfg.hash_block_size,
            output_block_hashes=output_hashes[r],
            synthetic_hashes=True,
        )
        for new_id, r in enumerate(order.tolist())
    ]


def _session_turns(cfg: SyntheticWorkload, rng: np.random.Generator) -> np.ndarray:
    """Turns per session (each >= 1), truncated so that they sum to ``num_requests``."""
    n = cfg.num_requests
    if cfg.sessions is None:
        return np.ones(n, dtype=np.int64)
    turns = sample_lengths(cfg.sessions.turns, n, rng)
    cum = np.cumsum(turns)
    m = int(np.searchsorted(cum, n)) + 1  # first session at which the count reaches n
    turns = turns[:m].copy()
    turns[-1] -= int(cum[m - 1]) - n
    return turns


def _layout(cfg: SyntheticWorkload, rng: np.random.Generator) -> _Layout:
    """Draw every random quantity and derive per-request prompt lengths and arrivals."""
    n = cfg.num_requests
    turns = _session_turns(cfg, rng)
    m = len(turns)
    starts = arrival_times(cfg.arrival, cfg.rate, m, rng, cv=cfg.cv)
    msg = sample_lengths(cfg.prompt, n, rng)
    out = sample_lengths(cfg.output, n, rng)
    prefix_tokens = np.zeros(m, dtype=np.int64)
    prefix_id = np.full(m, -1, dtype=np.int64)
    num_prefixes = 0
    if cfg.shared_prefix is not None:
        spec = cfg.shared_prefix
        num_prefixes = spec.num_prefixes
        uses = rng.random(m) < spec.fraction
        choice = rng.integers(0, spec.num_prefixes, size=m)
        prefix_tokens[uses] = spec.tokens
        prefix_id[uses] = choice[uses]
    session = np.repeat(np.arange(m, dtype=np.int64), turns)
    first = np.concatenate(([0], np.cumsum(turns)[:-1])).astype(np.int64)
    if cfg.sessions is not None:
        think = rng.exponential(cfg.sessions.think_time_s, size=n)
        think[first] = 0.0
        arrival = starts[session] + _segmented_cumsum(think, first, session)
    else:
        arrival = starts[session]
    seg_len = np.stack([msg, out], axis=1).ravel()
    seg_end = np.cumsum(seg_len)
    conv_start = seg_end[2 * first] - seg_len[2 * first]
    prompt = prefix_tokens[session] + seg_end[0::2] - conv_start[session]
    return _Layout(
        session=session,
        first=first,
        arrival_s=arrival,
        prompt=prompt,
        output=out,
        prefix_tokens=prefix_tokens,
        prefix_id=prefix_id,
        seg_end=seg_end,
        conv_start=conv_start,
        num_prefixes=num_prefixes,
    )


def _segmented_cumsum(values: np.ndarray, first: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every group; ``first[g]`` is group g's first index."""
    total = np.cumsum(values)
    return total - (total[first] - values[first])[group]


def _block_hashes(
    layout: _Layout, block_size: int
) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Hashes of every full prompt block and of the full blocks the output completes, per
    request (in session-major order): ``(block_hashes, output_block_hashes)``.

    Hashes are computed once per session for its longest conversation (the last turn's prompt
    + output: a turn's prompt + output ends before the next turn's prompt does), and each turn
    takes two adjacent slices, ``[0, prompt // bs)`` and ``[prompt // bs, (prompt + output) //
    bs)``, so turns share the int objects (turn ``k``'s output hashes *are* the matching
    prompt hashes of turn ``k + 1``). A session's last turn (every session-less request)
    takes an empty second slice: no later turn can hit its output blocks.

    Block ``i`` ends at token ``e = (i + 1) * block_size`` and takes the id of the segment
    holding its last token ``e - 1``. A segment covering conversation tokens ``[a, b)`` holds
    the last token of exactly ``b // bs - a // bs`` blocks, consecutive ones, so the per-block
    ids are one ``np.repeat`` of the segment ids (system prompt first, then the session's
    message/output segments in order).
    """
    n = len(layout.prompt)
    m = len(layout.first)
    last = np.append(layout.first[1:], n) - 1
    conv_blocks = (layout.prompt[last] + layout.output[last]) // block_size
    block_start = np.cumsum(conv_blocks) - conv_blocks
    total = int(conv_blocks.sum())
    # per segment (2r = request r's message, 2r + 1 its output): blocks whose last token it holds
    seg_session = np.repeat(layout.session, 2)
    local_end = layout.seg_end + (layout.prefix_tokens - layout.conv_start)[seg_session]
    blocks_to_end = local_end // block_size
    prefix_blocks = layout.prefix_tokens // block_size
    blocks_to_start = np.empty_like(blocks_to_end)
    blocks_to_start[1:] = blocks_to_end[:-1]
    blocks_to_start[2 * layout.first] = prefix_blocks
    # interleave: session s's system prompt, then its segments (session-major)
    prefix_slot = 2 * layout.first + np.arange(m, dtype=np.int64)
    seg_slot = np.arange(2 * n, dtype=np.int64) + seg_session + 1
    ids = np.empty(m + 2 * n, dtype=np.int64)
    counts = np.empty(m + 2 * n, dtype=np.int64)
    ids[prefix_slot] = layout.prefix_id
    counts[prefix_slot] = prefix_blocks
    ids[seg_slot] = layout.num_prefixes + np.arange(2 * n, dtype=np.int64)
    counts[seg_slot] = blocks_to_end - blocks_to_start
    seg_id = np.repeat(ids, counts)
    end = np.arange(total, dtype=np.int64) - np.repeat(block_start - 1, conv_blocks)
    end *= block_size
    flat = segment_block_hashes(seg_id, end)
    start = block_start[layout.session]
    prompt_blocks = layout.prompt // block_size
    output_blocks = (layout.prompt + layout.output) // block_size - prompt_blocks
    # A session's last turn (every session-less request) has no later turn to hit its output
    # blocks: leave them unhashed, which changes no hit and saves the engine registering them.
    output_blocks[last] = 0
    # one call (one ``tolist``) for both kinds of slice, so they share the int objects
    slices = leading_slices(
        flat,
        np.concatenate((start, start + prompt_blocks)),
        np.concatenate((prompt_blocks, output_blocks)),
    )
    return slices[:n], slices[n:]
