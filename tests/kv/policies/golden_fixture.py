"""The committed golden trace (``fixtures/zipf_2000.txt``) and its deliberate regeneration.

The golden miss counts in ``test_policy_golden.py`` are measured on a small trace that is
*committed* (one key per line), so they do not depend on numpy's generator staying the same
across versions. To regenerate deliberately (after a justified change)::

    .venv/bin/python tests/kv/policies/golden_fixture.py           # print the golden dicts
    .venv/bin/python tests/kv/policies/golden_fixture.py --write   # rewrite the trace first

``--write`` re-draws the trace with :func:`generate_zipf` (seeded) and overwrites the
fixture; without it the committed trace is used. Paste the printed dicts into
``test_policy_golden.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parent / "fixtures" / "zipf_2000.txt"
ZIPF_SEED = 20261123
CAPACITIES = (5, 10, 20, 50, 100)
#: The learned policy is fitted on this many leading accesses of a trace (25 %).
LEARNED_WARMUP_FRACTION = 0.25


def generate_zipf(num_accesses: int = 2000, num_keys: int = 200, alpha: float = 0.9) -> list[int]:
    """Seeded Zipf(alpha) trace over ``num_keys`` keys (key 0 the most popular)."""
    rng = np.random.default_rng(ZIPF_SEED)
    weights = 1.0 / np.arange(1, num_keys + 1) ** alpha
    keys = rng.choice(num_keys, size=num_accesses, p=weights / weights.sum())
    return [int(k) for k in keys]


def load_zipf() -> list[int]:
    """The committed golden trace (lines starting with ``#`` are comments)."""
    lines = FIXTURE.read_text().splitlines()
    return [int(line) for line in lines if line and not line.startswith("#")]


def write_zipf() -> None:
    """Overwrite the fixture with a freshly generated trace."""
    header = (
        "# kvsim golden policy trace: Zipf(0.9), 2000 accesses over 200 keys, "
        f"numpy default_rng({ZIPF_SEED}); regenerate with tests/kv/policies/golden_fixture.py\n"
    )
    FIXTURE.write_text(header + "\n".join(map(str, generate_zipf())) + "\n")


def _print_golden() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_policy_golden import measure_golden, separating_trace

    zipf = load_zipf()
    print("GOLDEN_ZIPF: dict[str, dict[int, int]] = {")
    for name, row in measure_golden(zipf).items():
        print(f"    {name!r}: {row},")
    print("}")
    print("GOLDEN_SEPARATING: dict[str, int] = {")
    for name, row in measure_golden(separating_trace(), (20,)).items():
        print(f"    {name!r}: {row[20]},")
    print("}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the trace file first")
    if parser.parse_args().write:
        write_zipf()
    _print_golden()


if __name__ == "__main__":
    main()
