"""The reuse predictor behind the ``learned`` policy: features, labels, LightGBM, metrics.

Features of one access of a key, computed from the access history *before* that access, each
quantised to an integer bin (so the model only ever sees binned values and predictions can
be memoised per feature tuple exactly)::

    recency   lbin(ticks since the key's previous access)        -1 if never seen
    count     lbin(number of previous accesses)                   0 if never seen
    gap       lbin(mean ticks between previous accesses)          -1 if fewer than 2
    depth     lbin(depth_of(key)) (e.g. block index in a prefix)  -1 without a depth_of

``lbin(x) = round(2 * log2(1 + x))`` (half-octave bins). A *tick* is one access seen by the
policy (insert or hit), so features do not depend on the time unit of the trace.

Label of access ``i`` with ``next_use[i]`` from :func:`annotate_next_use`: 1 iff the key is
accessed again within ``horizon`` ticks (``next_use[i] - i <= horizon``). Negatives whose
window runs past the end of the training split are censored (dropped).

LightGBM is imported lazily (optional extra ``learned``) and trained with
``deterministic=True``, one thread and a fixed seed, so the same split gives the same model.
Its trees are then compiled to nested tuples and evaluated in Python (``<=`` splits, leaf
values summed, sigmoid), memoised per feature tuple: one LightGBM ``predict`` call costs
milliseconds, far too much per access; the tests check both agree on every training row.
"""

from __future__ import annotations

import importlib
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kvsim.errors import ConfigError
from kvsim.kv.policies.base import annotate_next_use

__all__ = [
    "LBIN_TABLE",
    "Features",
    "ReusePredictor",
    "auc_from_counts",
    "compile_tree",
    "features_of",
    "lbin",
    "load_lightgbm",
    "predict_trees",
]

#: One access's binned features: (recency, count, gap, depth).
Features = tuple[int, int, int, int]

_TABLE_SIZE = 1 << 16
#: ``lbin`` of 0 .. 2**16 - 1, for hot paths that inline the lookup.
LBIN_TABLE = [round(2.0 * math.log2(1 + x)) for x in range(_TABLE_SIZE)]


def lbin(x: int) -> int:
    """Half-octave bin of a non-negative integer: ``round(2 * log2(1 + x))``."""
    return LBIN_TABLE[x] if x < _TABLE_SIZE else round(2.0 * math.log2(1 + x))


def features_of(stats: list[int] | None, tick: int, depth_bin: int) -> Features:
    """Features of an access at ``tick`` given the key's history ``[count, last, first]``."""
    if stats is None:
        return (-1, 0, -1, depth_bin)
    count, last, first = stats[0], stats[1], stats[2]
    gap = lbin((last - first) // (count - 1)) if count >= 2 else -1
    return (lbin(tick - last), lbin(count), gap, depth_bin)


def load_lightgbm() -> ModuleType:
    """Import LightGBM, or raise a :class:`ConfigError` saying how to install it."""
    try:
        return importlib.import_module("lightgbm")
    except ImportError:
        raise ConfigError(
            "policy",
            "policy 'learned' needs LightGBM, which is not installed: pip install 'kvsim[learned]'",
        ) from None


def auc_from_counts(counts: Iterable[tuple[float, int, int]]) -> float:
    """ROC AUC from ``(score, positives, negatives)`` rows (ties count one half).

    Returns 0.5 when one class is empty (no ranking to judge).
    """
    rows = sorted(counts)
    num_pos = sum(r[1] for r in rows)
    num_neg = sum(r[2] for r in rows)
    if num_pos == 0 or num_neg == 0:
        return 0.5
    neg_below = 0
    total = 0.0
    for _, pos, neg in rows:
        total += pos * (neg_below + 0.5 * neg)
        neg_below += neg
    return total / (num_pos * num_neg)


#: A compiled tree: a leaf value, or ``(feature, threshold, left, right)``.
Tree = float | tuple[int, float, "Tree", "Tree"]


def compile_tree(node: Mapping[str, Any]) -> Tree:
    """One tree of ``Booster.dump_model()["tree_info"][i]["tree_structure"]`` as tuples."""
    if "leaf_value" in node:
        return float(node["leaf_value"])
    if node.get("decision_type") != "<=":
        raise ConfigError("policy", f"unsupported LightGBM split {node.get('decision_type')!r}")
    return (
        int(node["split_feature"]),
        float(node["threshold"]),
        compile_tree(node["left_child"]),
        compile_tree(node["right_child"]),
    )


def predict_trees(trees: Sequence[Tree], feats: Sequence[float]) -> float:
    """Sigmoid of the summed leaf values reached by ``feats`` (binary objective)."""
    raw = 0.0
    for tree in trees:
        node = tree
        while isinstance(node, tuple):
            node = node[2] if feats[node[0]] <= node[1] else node[3]
        raw += node
    return 1.0 / (1.0 + math.exp(-raw))


def _auc(y: np.ndarray, pred: np.ndarray) -> float:
    """ROC AUC of predictions ``pred`` against 0/1 labels ``y``."""
    values, inverse = np.unique(pred, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=len(values))
    tot = np.bincount(inverse, minlength=len(values))
    return auc_from_counts(
        (float(v), int(p), int(t - p)) for v, p, t in zip(values, pos, tot, strict=True)
    )


class ReusePredictor:
    """P(reuse within ``horizon`` ticks | features), memoised per feature tuple.

    Invariant: ``predict(f)`` is a pure function of ``f`` once :meth:`train` has returned.
    """

    def __init__(self, horizon: int, params: dict[str, Any], num_trees: int) -> None:
        self.horizon = horizon
        self.params = params
        self.num_trees = num_trees
        self.booster: Any = None
        self._trees: list[Tree] = []
        self._constant = 0.0
        #: Predictions by feature tuple (read directly by the policy's hot path).
        self.memo: dict[Features, float] = {}

    def offline_features(
        self,
        keys: Sequence[Hashable],
        history_cap: int,
        depth_of: Callable[[Hashable], int] | None,
    ) -> list[Features]:
        """Features of every access of ``keys``, tracked as the policy does online.

        History is an LRU of at most ``history_cap`` keys (online: the resident keys plus a
        bounded ghost history).
        """
        hist: OrderedDict[Hashable, list[int]] = OrderedDict()
        out: list[Features] = []
        append = out.append
        for tick, key in enumerate(keys):
            stats = hist.get(key)
            dbin = lbin(depth_of(key)) if depth_of is not None else -1
            append(features_of(stats, tick, dbin))
            if stats is None:
                hist[key] = [1, tick, tick]
                if len(hist) > history_cap:
                    hist.popitem(last=False)
            else:
                stats[0] += 1
                stats[1] = tick
                hist.move_to_end(key)
        return out

    def train(
        self, keys: Sequence[Hashable], feats: list[Features], max_samples: int
    ) -> dict[str, float]:
        """Fit on the accesses ``keys`` with features ``feats``; return training metrics."""
        n = len(keys)
        next_use = annotate_next_use(keys)
        h = self.horizon
        rows = [i for i in range(n) if next_use[i] - i <= h or i + h < n]
        if len(rows) > max_samples:  # deterministic even stride, keeps the time spread
            step = len(rows) / max_samples
            rows = [rows[int(j * step)] for j in range(max_samples)]
        y = np.fromiter((next_use[i] - i <= h for i in rows), dtype=np.float64, count=len(rows))
        x = np.array([feats[i] for i in rows], dtype=np.float64).reshape(len(rows), 4)
        positive_rate = float(y.mean()) if len(rows) else 0.0
        self.memo.clear()
        self.booster, self._trees = None, []
        self._constant = positive_rate
        if len(rows) and positive_rate not in (0.0, 1.0):
            lgb = load_lightgbm()
            data = lgb.Dataset(x, label=y, params={"verbose": -1})
            self.booster = lgb.train(self.params, data, num_boost_round=self.num_trees)
            info = self.booster.dump_model()["tree_info"]
            self._trees = [compile_tree(t["tree_structure"]) for t in info]
        predict = self.predict
        pred = np.fromiter((predict(feats[i]) for i in rows), dtype=np.float64, count=len(rows))
        accuracy = float(np.mean((pred >= 0.5) == (y >= 0.5))) if len(rows) else 0.0
        return {
            "num_train_accesses": float(n),
            "num_train_samples": float(len(rows)),
            "train_positive_rate": positive_rate,
            "train_auc": _auc(y, pred) if len(rows) else 0.5,
            "train_accuracy": accuracy,
            "horizon": float(h),
            "constant_model": 0.0 if self.booster is not None else 1.0,
        }

    def predict(self, feats: Features) -> float:
        """P(reuse within the horizon) for one access."""
        p = self.memo.get(feats)
        if p is None:
            p = predict_trees(self._trees, feats) if self._trees else self._constant
            self.memo[feats] = p
        return p
