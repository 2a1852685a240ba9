"""Token-length sampling: every distribution, clipping, empirical CSV columns and errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kvsim.config.workload import LengthDist
from kvsim.errors import TraceError
from kvsim.workload.lengths import read_length_column, sample_lengths

SHARED_DATA = Path(__file__).parents[2] / ".." / "shared" / "data"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_fixed_is_exact_and_draws_nothing() -> None:
    gen = rng()
    out = sample_lengths(LengthDist(dist="fixed", value=77), 5, gen)
    assert out.dtype == np.int64
    assert out.tolist() == [77] * 5
    assert gen.random() == rng().random()  # the generator was not advanced


def test_zero_samples() -> None:
    out = sample_lengths(LengthDist(dist="lognormal"), 0, rng())
    assert out.shape == (0,) and out.dtype == np.int64


def test_negative_n_is_an_error() -> None:
    with pytest.raises(ValueError):
        sample_lengths(LengthDist(), -1, rng())


def test_uniform_covers_both_ends() -> None:
    out = sample_lengths(LengthDist(dist="uniform", low=3, high=6), 4000, rng())
    assert set(out.tolist()) == {3, 4, 5, 6}


def test_normal_mean_and_clipping() -> None:
    dist = LengthDist(dist="normal", mean=1000, std=100, min=1, max=100_000)
    out = sample_lengths(dist, 20_000, rng())
    assert abs(out.mean() - 1000) < 5
    assert abs(out.std() - 100) < 3
    clipped = sample_lengths(LengthDist(dist="normal", mean=10, std=50, min=4, max=20), 2000, rng())
    assert clipped.min() == 4 and clipped.max() == 20


def test_lognormal_mean_is_the_mean_of_lengths() -> None:
    dist = LengthDist(dist="lognormal", mean=500, sigma=0.5, max=10**9)
    out = sample_lengths(dist, 50_000, rng())
    assert abs(out.mean() / 500 - 1) < 0.02
    # the median of a lognormal is exp(mu) = mean * exp(-sigma^2 / 2)
    assert abs(np.median(out) / (500 * math.exp(-0.125)) - 1) < 0.02


def test_zipf_is_scaled_and_clipped() -> None:
    out = sample_lengths(LengthDist(dist="zipf", a=1.2, value=10, max=5000), 10_000, rng())
    assert out.min() == 10
    assert (out % 10 == 0).all()
    assert out.max() == 5000  # heavy tail reaches the clip
    assert (out >= 1).all()


def test_results_always_within_min_max() -> None:
    for dist in ("uniform", "normal", "lognormal", "zipf"):
        spec = LengthDist(dist=dist, min=50, max=60, low=1, high=1000, mean=55, std=30)
        out = sample_lengths(spec, 500, rng())
        assert out.min() >= 50 and out.max() <= 60, dist


def test_same_seed_same_lengths() -> None:
    spec = LengthDist(dist="lognormal", mean=300, sigma=1.0)
    a = sample_lengths(spec, 100, rng(3))
    b = sample_lengths(spec, 100, rng(3))
    c = sample_lengths(spec, 100, rng(4))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_empirical_draws_only_column_values(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "l.csv", "a,b\n1,10\n2,20.4\n\n3,30\n")
    spec = LengthDist(dist="empirical", path=str(csv_path), column="b")
    out = sample_lengths(spec, 3000, rng())
    assert set(out.tolist()) == {10, 20, 30}
    assert read_length_column(csv_path, "b").tolist() == [10.0, 20.4, 30.0]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a,b\n1,10\n2,x\n", 3, "not a number"),
        ("a,b\n1,10\n2,\n", 3, "missing value"),
        ("a,b\n1,10\n2\n", 3, "missing value"),
        ("a,b\n1,-5\n", 2, "> 0"),
        ("a,b\n1,nan\n", 2, "> 0"),
    ],
)
def test_empirical_bad_cells_name_file_line_column(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    csv_path = write(tmp_path / "bad.csv", text)
    with pytest.raises(TraceError) as info:
        read_length_column(csv_path, "b")
    msg = str(info.value)
    assert f"{csv_path}:{line}" in msg
    assert "'b'" in msg and problem in msg


def test_empirical_missing_column_lists_columns(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "l.csv", "a,b\n1,2\n")
    with pytest.raises(TraceError, match=r"l\.csv:1: field 'zz': no such column.*'a', 'b'"):
        sample_lengths(LengthDist(dist="empirical", path=str(csv_path), column="zz"), 3, rng())


def test_empirical_missing_file_and_empty_column(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(TraceError, match=r"nope\.csv: field 'b': cannot read file"):
        read_length_column(missing, "b")
    empty = write(tmp_path / "e.csv", "a,b\n")
    with pytest.raises(TraceError, match=r"e\.csv: field 'b': column has no values"):
        read_length_column(empty, "b")
    blank = write(tmp_path / "blank.csv", "")
    with pytest.raises(TraceError, match="file is empty"):
        read_length_column(blank, "b")


def test_empirical_sharegpt_median() -> None:
    path = SHARED_DATA / "lengths" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
    if not path.exists():
        pytest.skip(f"shared data not available at {path}")
    values = read_length_column(path, "num_prefill_tokens")
    assert len(values) == 30_731
    assert np.median(values) == 1730  # README fact
    spec = LengthDist(dist="empirical", path=str(path), column="num_prefill_tokens")
    assert abs(np.median(sample_lengths(spec, 20_000, rng())) / 1730 - 1) < 0.05
