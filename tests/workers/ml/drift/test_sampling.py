"""reservoir_sample: a uniform sample of at most k rows of a stream, in bounded memory."""

from collections import Counter

from scipy.stats import chisquare

from workers.ml.drift.sampling import reservoir_sample


def test_reservoir_keeps_at_most_k_distinct_rows_of_a_long_stream():
    sample = reservoir_sample((index for index in range(100_000)), 1_000, seed=3)

    assert len(sample) == 1_000
    assert len(set(sample)) == 1_000
    assert all(0 <= row < 100_000 for row in sample)


def test_reservoir_returns_every_row_when_the_stream_is_shorter_than_k():
    assert reservoir_sample(iter(["a", "b", "c"]), 10, seed=0) == ["a", "b", "c"]
    assert reservoir_sample([], 10, seed=0) == []


def test_reservoir_of_size_zero_is_empty():
    assert reservoir_sample(range(10), 0, seed=0) == []


def test_reservoir_is_reproducible_with_its_seed():
    assert reservoir_sample(range(10_000), 50, seed=7) == reservoir_sample(range(10_000), 50, seed=7)
    assert reservoir_sample(range(10_000), 50, seed=7) != reservoir_sample(range(10_000), 50, seed=8)


def test_reservoir_keeps_every_row_with_the_same_probability():
    """Over 4,000 seeded runs of 5 out of 40 rows, each row is expected 500 times; a chi-square test of the counts
    must not reject uniformity (p > 0.001; the rows late in the stream are the ones a skipping bug would starve)."""
    rows, k, runs = 40, 5, 4_000
    counts = Counter(row for seed in range(runs) for row in reservoir_sample(range(rows), k, seed=seed))

    observed = [counts[row] for row in range(rows)]
    assert sum(observed) == runs * k
    assert chisquare(observed).pvalue > 0.001


def test_reservoir_keeps_early_and_late_rows_of_a_long_stream_alike():
    """Rows of the first and the last tenth of a 100,000-row stream are kept equally often (~10% of the sample)."""
    counts = Counter()
    for seed in range(40):
        for row in reservoir_sample(range(100_000), 500, seed=seed):
            counts[row * 10 // 100_000] += 1

    observed = [counts[decile] for decile in range(10)]
    assert chisquare(observed).pvalue > 0.001
