"""Arrival processes: the times at which requests (or sessions) arrive."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["ArrivalProcess", "arrival_times"]

ArrivalProcess = Literal["poisson", "gamma", "constant"]


def arrival_times(
    process: ArrivalProcess,
    rate: float,
    n: int,
    rng: np.random.Generator,
    cv: float = 1.0,
) -> np.ndarray:
    """``n`` non-decreasing arrival times in seconds; the first arrival is at 0.

    Inter-arrival gaps have mean ``1 / rate``:

    * ``poisson``: exponential gaps (``rng.exponential``);
    * ``gamma``: gamma gaps with coefficient of variation ``cv`` (shape ``1 / cv**2``,
      scale ``cv**2 / rate``); ``cv = 1`` is statistically Poisson, ``cv > 1`` is bursty;
    * ``constant``: gaps of exactly ``1 / rate`` (no randomness drawn).

    Exactly ``n - 1`` gaps are drawn, so ``n`` arrivals span ``n - 1`` gaps.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if rate <= 0 or cv <= 0:
        raise ValueError(f"rate and cv must be > 0, got rate={rate}, cv={cv}")
    num_gaps = max(n - 1, 0)
    if process == "poisson":
        gaps = rng.exponential(1.0 / rate, size=num_gaps)
    elif process == "gamma":
        shape = 1.0 / (cv * cv)
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=num_gaps)
    elif process == "constant":
        return np.arange(n, dtype=np.float64) / rate
    else:
        raise ValueError(f"unknown arrival process {process!r}; use poisson, gamma or constant")
    times = np.zeros(n, dtype=np.float64)
    if num_gaps:
        np.cumsum(gaps, out=times[1:])
    return times
