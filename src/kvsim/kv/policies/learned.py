"""Learned: evict the key least likely to be reused soon, by a LightGBM reuse predictor.

Needs the optional extra ``learned`` (``pip install 'kvsim[learned]'``); LightGBM is imported
when the policy is created, never by ``import kvsim``.

**Training.** :meth:`LearnedPolicy.fit` receives the warm-up split's block accesses (one key
per access, in order) and trains a binary classifier "is this key accessed again within
``horizon`` accesses?" (default ``capacity``, at most half the split: negatives whose window
runs past the split's end are censored) on features computed from the access history only
(recency, count, mean gap, optional depth; see :mod:`kvsim.kv.policies.learned_model`), with
labels from the split's next-use annotation. The driver then replays the whole trace from
its start: the first ``num_train_accesses`` accesses after :meth:`fit` are the warm-up split
again, the rest is the evaluation split, on which :meth:`LearnedPolicy.prediction_metrics`
scores the predictions online (labelled when the key comes back or its horizon passes).
Using the policy before :meth:`fit` raises :class:`~kvsim.errors.SimulationError`.

**Eviction.** Every insert/access of a key scores it ``p / size`` with
``p = P(reuse within horizon | features)`` and moves it to the most-recent end of score
bucket ``min(int(p / size * num_buckets), num_buckets - 1)`` (default 64 buckets, i.e. the
score to 1/64). ``evict`` takes::

    1. the least recently accessed key, if it has been idle more than ``expire_after``
       accesses (default 8 * horizon): its prediction is stale, and this is what lets a
       once-hot key leave after a phase change;
    2. otherwise the least recently scored key of the lowest non-empty bucket.

Buckets and ``_res`` (resident key -> history, in order of last access) are ``OrderedDict``s
(a plain dict's first key costs O(deleted keys));
``_low`` is a lower bound on the lowest non-empty bucket (moved down on insert, up while
evicting), so every operation is O(1) (at most ``num_buckets`` steps of ``_low`` per
eviction). A key is re-scored only when it is accessed; predictions are memoised per binned
feature tuple. Per-key history (count, last and first tick) is kept for resident keys and,
after eviction, for at most ``history_ratio * capacity`` ghost keys (oldest dropped first).
Deterministic: same fit split and accesses -> same evictions.

**Evaluation** costs O(1) per access: each key's history also holds the tally row of its
pending prediction (one ``[positives, negatives]`` row per distinct prediction), labelled at
the key's next access from the recency already computed for the features.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)
from kvsim.kv.policies.learned_model import (
    LBIN_TABLE,
    ReusePredictor,
    auc_from_counts,
    lbin,
    load_lightgbm,
)

__all__ = ["LearnedPolicy", "unpack_features"]

_LBIN = LBIN_TABLE
assert len(_LBIN) == 65536  # the literal bound used in LearnedPolicy._score


def unpack_features(packed: int) -> tuple[int, int, int, int]:
    """The feature tuple of a key packed as in :meth:`LearnedPolicy._score` with its depth
    field: ``recency << 35 | count << 28 | (gap + 1) << 21 | (depth + 1)`` (bins < 127);
    count 0 means never seen, i.e. ``(-1, 0, -1, depth)``."""
    depth = (packed & 0x7F) - 1
    count = (packed >> 28) & 0x7F
    if count == 0:
        return (-1, 0, -1, depth)
    return ((packed >> 35) & 0x7F, count, ((packed >> 21) & 0x7F) - 1, depth)


_NOT_FITTED = (
    "policy 'learned' is not trained: call policy.fit(warmup_keys, warmup_times) with the "
    "warm-up split's block accesses before replaying (kvsim cache does this with its "
    "warm-up fraction)"
)


@register_eviction("learned")
class LearnedPolicy(EvictionPolicy):
    """LightGBM reuse predictor, lowest predicted reuse evicted first (module docstring).

    Invariants: ``_res`` holds the resident keys in order of last access, each in exactly
    the bucket ``_res[key][4]``;
    no bucket below ``_low`` holds a key; ghost history holds at most ``history_cap`` keys.
    """

    needs_training = True

    def __init__(
        self,
        capacity: int = 0,
        horizon: int = 0,
        expire_after: int = 0,
        history_ratio: float = 2.0,
        num_trees: int = 40,
        num_leaves: int = 15,
        learning_rate: float = 0.1,
        max_train_samples: int = 1_000_000,
        num_buckets: int = 64,
        seed: int = 0,
        depth_of: Callable[[Hashable], int] | None = None,
    ) -> None:
        super().__init__(capacity)
        self._require_capacity()
        load_lightgbm()
        if (
            horizon < 0
            or expire_after < 0
            or history_ratio < 0
            or num_trees < 1
            or num_leaves < 2
            or num_buckets < 1
        ):
            raise ConfigError(
                "policy.horizon",
                "need horizon >= 0 (0: auto), expire_after >= 0 (0: 8 * horizon), "
                "history_ratio >= 0, num_trees >= 1, num_leaves >= 2, num_buckets >= 1",
            )
        self._horizon_param = horizon
        self._expire_param = expire_after
        self._set_horizon(horizon or capacity)
        self.history_cap = round(history_ratio * capacity)
        self.num_buckets = num_buckets
        self.max_train_samples = max(1, max_train_samples)
        self.depth_of = depth_of
        params = {
            "objective": "binary",
            "num_leaves": num_leaves,
            "learning_rate": learning_rate,
            "min_data_in_leaf": 20,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "seed": seed,
            "verbose": -1,
        }
        self._model = ReusePredictor(self.horizon, params, num_trees)
        self._predict = self._model.predict
        # packed features (see _score) -> (p, bucket at size 1, row [positives, negatives])
        self._scored: dict[int, tuple[float, int, list[int]]] = {}
        self._rows: list[tuple[float, list[int]]] = []  # (p, row) of every _scored entry
        self._fitted = False
        self.num_train_accesses = 0
        self._reset_state()

    def _reset_state(self) -> None:
        """Empty the cache, the history and the evaluation tallies."""
        self.used = 0
        self._tick = 0
        # key -> [count, last tick, first tick, size, bucket, pending evaluation row or None]
        self._res: OrderedDict[Hashable, list[Any]] = OrderedDict()  # LRU first
        self._ghost: OrderedDict[Hashable, list[Any]] = OrderedDict()
        self._buckets: list[OrderedDict[Hashable, None]] = [
            OrderedDict() for _ in range(self.num_buckets)
        ]
        self._low = self.num_buckets  # no bucket below this index holds a key
        # evaluation: pending predictions of keys whose history was dropped -> (tick, row)
        self._orphans: dict[Hashable, tuple[int, list[int]]] = {}

    # -- training ---------------------------------------------------------------------------

    def fit(self, keys: Sequence[Hashable], times: Sequence[float]) -> dict[str, float]:
        """Train on the warm-up split (see the module docstring), then start empty: resident
        keys, history and evaluation tallies are dropped, so a refit replays from scratch.

        Raises :class:`ConfigError` for an empty split or ``times`` that do not match
        ``keys`` or decrease. Returns ``num_train_accesses``, ``num_train_samples``,
        ``train_positive_rate``, ``train_auc``, ``train_accuracy``, ``horizon`` and
        ``constant_model`` (1.0 if the split had a single class).
        """
        if len(keys) == 0:
            raise ConfigError(
                "warmup",
                "policy 'learned' trains on the warm-up split, which is empty: "
                "use a warm-up fraction > 0",
            )
        if len(times) != len(keys):
            raise ConfigError("warmup", f"{len(keys)} keys but {len(times)} times")
        if any(b < a for a, b in itertools.pairwise(times)):
            raise ConfigError("warmup", "access times must not decrease")
        if not self._horizon_param:  # auto: capacity, but leave the split both label classes
            self._set_horizon(min(self.capacity, max(1, len(keys) // 2)))
        feats = self._model.offline_features(keys, self.capacity + self.history_cap, self.depth_of)
        metrics = self._model.train(keys, feats, self.max_train_samples)
        self._fitted = True
        self.num_train_accesses = len(keys)
        self._scored.clear()
        self._rows.clear()
        self._reset_state()
        return metrics

    def _set_horizon(self, horizon: int) -> None:
        self.horizon = horizon
        self.expire_after = self._expire_param or 8 * horizon
        if hasattr(self, "_model"):
            self._model.horizon = horizon

    def prediction_metrics(self) -> dict[str, float]:
        """Quality of the predictions made on the evaluation split (accesses after the first
        ``num_train_accesses`` since :meth:`fit`) whose outcome is known: ``eval_auc``,
        ``eval_accuracy`` (threshold 0.5), ``eval_positive_rate``, ``num_eval_samples``.

        A prediction at tick ``t0`` is positive iff its key is accessed again by
        ``t0 + horizon`` (counted at that access), negative iff not and ``t0 + horizon`` is
        before the last access seen (counted here or when the key's history is dropped),
        censored otherwise.
        """
        limit = self._tick - 1 - self.horizon
        for stats in itertools.chain(self._res.values(), self._ghost.values()):
            if stats[5] is not None and stats[1] < limit:
                stats[5][1] += 1
                stats[5] = None
        self._sweep_orphans(limit)
        merged: dict[float, list[int]] = {}
        for p, row in self._rows:
            acc = merged.setdefault(p, [0, 0])
            acc[0] += row[0]
            acc[1] += row[1]
        rows = [(p, c[0], c[1]) for p, c in merged.items()]
        num_pos = sum(r[1] for r in rows)
        num = num_pos + sum(r[2] for r in rows)
        correct = sum(pos if p >= 0.5 else neg for p, pos, neg in rows)
        return {
            "num_eval_samples": float(num),
            "eval_positive_rate": num_pos / num if num else 0.0,
            "eval_auc": auc_from_counts(rows),
            "eval_accuracy": correct / num if num else 0.0,
        }

    def _sweep_orphans(self, limit: int) -> None:
        """Count orphaned predictions made before tick ``limit`` as negatives."""
        orphans = self._orphans
        for key in [k for k, (t0, _) in orphans.items() if t0 < limit]:
            orphans.pop(key)[1][1] += 1

    # -- the protocol -----------------------------------------------------------------------

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._res:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        if not self._fitted:
            raise SimulationError(_NOT_FITTED)
        ghost = self._ghost.pop(key, None)
        if ghost is None:
            if self._orphans:  # a pending prediction whose history was dropped
                orphan = self._orphans.pop(key, None)
                if orphan is not None:
                    orphan[1][self._tick - orphan[0] > self.horizon] += 1
            self._score(key, [0, 0, 0, size, -1, None])
        else:
            ghost[3], ghost[4] = size, -1
            self._score(key, ghost)
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        stats = self._res.get(key)
        if stats is None:
            raise not_resident(key)
        self._score(key, stats)

    def _score(self, key: Hashable, stats: list[Any]) -> None:
        """Predict, move the key to its score bucket's MRU end, update its history.

        Hot path: ``stats`` indices are literals (0 count, 1 last tick, 2 first tick, 3 size,
        4 bucket, 5 evaluation row of the pending prediction) and ``lbin`` is inlined as a
        table lookup.
        """
        tick = self._tick
        self._tick = tick + 1
        count = stats[0]
        if count:
            last = stats[1]
            rec = tick - last
            row = stats[5]
            if row is not None:  # label the previous prediction: reused within the horizon?
                row[rec > self.horizon] += 1
            if count >= 2:
                gap = (last - stats[2]) // (count - 1)
                gap = _LBIN[gap] if gap < 65536 else lbin(gap)
            else:
                gap = -1
            # the binned features packed into one int, the memo key (see unpack_features)
            fkey = (
                ((_LBIN[rec] if rec < 65536 else lbin(rec)) << 14)
                | ((_LBIN[count] if count < 65536 else lbin(count)) << 7)
                | (gap + 1)
            )
            stats[0] = count + 1
        else:
            fkey = 0
            stats[0] = 1
            stats[2] = tick
        stats[1] = tick
        if self.depth_of is not None:  # without it the (constant) depth field is left out
            fkey = (fkey << 21) | (lbin(self.depth_of(key)) + 1)
        scored = self._scored.get(fkey)
        if scored is None:
            scored = self._new_score(fkey)
        b = scored[1] if stats[3] == 1 else self._bucket_of(scored[0] / stats[3])
        stats[5] = scored[2] if tick >= self.num_train_accesses else None  # evaluation split
        old = stats[4]
        if old < 0:  # newly resident
            self._res[key] = stats
        else:
            self._res.move_to_end(key)
            if old == b:
                self._buckets[b].move_to_end(key)
                return
            del self._buckets[old][key]
        self._buckets[b][key] = None
        stats[4] = b
        if b < self._low:
            self._low = b

    def _bucket_of(self, score: float) -> int:
        """The bucket of ``score``; scores >= 1 share the top bucket."""
        return min(int(score * self.num_buckets), self.num_buckets - 1)

    def _new_score(self, fkey: int) -> tuple[float, int, list[int]]:
        """Predict for a packed feature key not seen since :meth:`fit` and memoise it."""
        p = self._predict(unpack_features(fkey if self.depth_of is not None else fkey << 21))
        row = [0, 0]
        self._rows.append((p, row))
        scored = self._scored[fkey] = (p, self._bucket_of(p), row)
        return scored

    def on_remove(self, key: Hashable) -> None:
        stats = self._res.get(key)
        if stats is None:
            raise not_resident(key)
        self._drop(key, stats)

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        res = self._res
        if not res:
            return None
        key, stats = next(iter(res.items()))
        buckets = self._buckets
        if self._tick - stats[1] <= self.expire_after:  # else stale prediction: LRU first
            low = self._low
            while not buckets[low]:
                low += 1
            self._low = low
            key = next(iter(buckets[low]))
            stats = res[key]
        # as _drop, inlined on the hot path
        del res[key], buckets[stats[4]][key]
        self.used -= stats[3]
        ghost = self._ghost
        ghost[key] = stats
        if len(ghost) > self.history_cap:
            self._trim_ghost()
        return key

    def _drop(self, key: Hashable, stats: list[Any]) -> None:
        """Take the resident ``key`` out; keep its history (bounded, oldest dropped)."""
        del self._res[key], self._buckets[stats[4]][key]
        self.used -= stats[3]
        self._ghost[key] = stats
        if len(self._ghost) > self.history_cap:
            self._trim_ghost()

    def _trim_ghost(self) -> None:
        """Forget the oldest ghost; a prediction of it still pending is labelled if its
        horizon has passed (negative), else kept in ``_orphans`` (bounded)."""
        key, stats = self._ghost.popitem(last=False)
        row = stats[5]
        if row is None:
            return
        t0 = stats[1]
        if self._tick - t0 > self.horizon:
            row[1] += 1
            return
        self._orphans[key] = (t0, row)
        if len(self._orphans) > 2 * (self.horizon + 1) + 64:
            self._sweep_orphans(self._tick - self.horizon)

    def __len__(self) -> int:
        return len(self._res)

    def __contains__(self, key: object) -> bool:
        return key in self._res
