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
    All hashes are synthesised (``synthetic_hashes=True``) at ``cfg.hash_block_size``.
    """
    layout = _layout(cfg, rng)
    hashes = _block_hashes(layout, cfg.hash_block_size)
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


def _block_hashes(layout: _Layout, block_size: int) -> list[tuple[int, ...]]:
    """Hashes of every full prompt block, per request (in session-major order).

    Hashes are computed once per session for the longest prompt (the last turn's: prompts grow
    within a session), and each turn takes a leading slice, so the turns share the int
    objects. Block ``i`` ends at token ``e = (i + 1) * block_size``; its last token ``e - 1``
    lies in the system prompt if ``e <= P``, else in the message/output segment found by
    binary search on ``seg_end``.
    """
    last = np.append(layout.first[1:], len(layout.prompt)) - 1
    conv_blocks = layout.prompt[last] // block_size
    total = int(conv_blocks.sum())
    sess = np.repeat(np.arange(len(conv_blocks), dtype=np.int64), conv_blocks)
    block_start = np.cumsum(conv_blocks) - conv_blocks
    end = (np.arange(total, dtype=np.int64) - block_start[sess] + 1) * block_size
    prefix_len = layout.prefix_tokens[sess]
    in_prefix = end <= prefix_len
    position = layout.conv_start[sess] + (end - 1 - prefix_len)
    seg_index = np.searchsorted(layout.seg_end, position, side="right")
    seg_id = np.where(in_prefix, layout.prefix_id[sess], layout.num_prefixes + seg_index)
    flat = segment_block_hashes(seg_id, end)
    return leading_slices(flat, block_start[layout.session], layout.prompt // block_size)
