"""The preview's statistics: the one-pass stratified sampler and the estimators, no network."""

import doctest
import math
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from gb_backfill import ConfigError, RateLimits
from gb_backfill._preview import estimates as estimates
from gb_backfill._preview import sampling as sampling
from gb_backfill._preview.estimates import (
    estimate_distinct,
    estimate_share,
    estimate_total,
    t_quantile,
)
from gb_backfill._preview.sampling import DEFAULT_SAMPLE_SIZE, StratifiedSampler, sample_size_for

# --- A synthetic population with the structure of real points --------------------------------

NAMES = np.array(
    [
        "purchase_completed",
        "review_submitted",
        "signed_up",
        "referral_completed",
        "newsletter_subscribed",
        "profile_completed",
        "vip_upgraded",
    ]
)


class Population:
    """Rows of a shop's history and the points a preview would quote for each.

    Event names of very different sizes (a rare one of 0.5%, and one of exactly 12 rows),
    customers with a long tail of activity (lognormal), 15% of them unknown to Gameball (their
    rows quote 0), most rows 0 points: purchases earn 1 point per 10 of a lognormal amount from
    200 on, plus 200 from 1,000 on, plus 50 on a customer's first purchase; 30% of reviews earn
    20; sign-ups 100; half the referrals 150; completed profiles 30; half the rare upgrades 500;
    and a customer tier multiplies everything by 1, 1.5 or 2.
    """

    def __init__(self, rows, seed=1):
        rng = np.random.default_rng(seed)
        customers = max(rows // 6, 10)
        activity = rng.lognormal(0, 1.2, customers)
        customer = rng.choice(customers, rows, p=activity / activity.sum())
        exists = rng.random(customers) < 0.85
        tier = rng.choice([1.0, 1.5, 2.0], customers, p=[0.7, 0.2, 0.1])
        name = rng.choice(6, rows, p=[0.55, 0.2, 0.1, 0.08, 0.065, 0.005])
        name[rng.choice(rows, 12, replace=False)] = 6
        amount = rng.lognormal(5.0, 1.0, rows)
        points = np.zeros(rows)
        buy = name == 0
        points[buy] = np.where(amount[buy] >= 200, np.floor(amount[buy] / 10), 0)
        points[buy] += np.where(amount[buy] >= 1000, 200, 0)
        _, first = np.unique(np.where(buy, customer, -1), return_index=True)
        points[first[buy[first]]] += 50
        for event, share, bonus in ((1, 0.3, 20), (2, 1.0, 100), (3, 0.5, 150), (5, 1.0, 30)):
            rows_of = name == event
            points[rows_of] = np.where(rng.random(rows_of.sum()) < share, bonus, 0)
        points[name == 6] = np.where(rng.random(12) < 0.5, 500, 0)
        points *= tier[customer]
        points[~exists[customer]] = 0
        self.labels = pd.Series(NAMES[name], dtype="category")
        self.points = points
        self.customer = customer
        self.missing = ~exists[customer]  # rows whose customer the preview does not find
        self.rows_per_customer = dict(enumerate(np.bincount(customer).tolist()))

    def sample(self, size, seed, batch=50_000):
        """A sample of row positions, offered in batches as a file would be read."""
        sampler = StratifiedSampler(size=size, seed=seed)
        for start in range(0, len(self.points), batch):
            sampler.offer(self.labels[start : start + batch], lambda p, s=start: (p + s).tolist())
        return sampler.sample()


@pytest.fixture(scope="module")
def shop():
    return Population(3_000)


@pytest.fixture(scope="module")
def big_shop():
    return Population(1_000_000)


def coverage_of_points(population, size, trials=100):
    """(intervals holding the true total, relative errors) over seeded trials."""
    truth = population.points.sum()
    covered, errors = 0, []
    for seed in range(trials):
        sample = population.sample(size, seed)
        estimate = estimate_total(sample.per_stratum(lambda row: population.points[row]))
        covered += estimate.low <= truth <= estimate.high
        errors.append(abs(estimate.value / truth - 1))
    return covered, np.array(errors)


# --- The sample size ---------------------------------------------------------------------------


def test_the_default_sample_is_what_the_window_allows_in_15_seconds():
    """At 30/s 15 s would hold 429 quotes, but 360 per 30 s caps the sample at 360."""
    assert sampling.PREVIEW_SECONDS == 15
    assert DEFAULT_SAMPLE_SIZE == 360
    assert sample_size_for(limits=RateLimits(per_second=30, per_window=0)) == 429
    assert sample_size_for(limits=RateLimits(per_second=30, per_window=360), seconds=5) == 143
    # a second window opens after 30 s (plus the limiter's slack): 360 + 421 more
    assert sample_size_for(limits=RateLimits(per_second=30, per_window=360), seconds=45) == 720
    assert sample_size_for(limits=RateLimits(per_second=0, per_window=360)) == 360


def test_the_sample_size_refuses_unlimited_limits_and_bad_seconds():
    """With no limit, time does not bound the sample: the caller must say its size."""
    with pytest.raises(ConfigError, match="size="):
        sample_size_for(limits=RateLimits.unlimited())
    with pytest.raises(ConfigError, match="seconds"):
        sample_size_for(limits=RateLimits(), seconds=0)


# --- The sampler -------------------------------------------------------------------------------


def strata_of(sizes, seed=0):
    """Labels for strata of the given sizes, shuffled."""
    labels = np.concatenate([[name] * n for name, n in sizes.items()])
    return np.random.default_rng(seed).permutation(labels)


def test_every_stratum_gets_its_minimum_and_the_rest_goes_by_size():
    """n_h >= min(N_h, 5), n_h <= N_h, n == size, and big strata share the rest by size."""
    labels = strata_of({"buy": 20_000, "review": 5_000, "rare": 3, "odd": 9})
    sampler = StratifiedSampler(size=300, seed=4)
    sampler.offer(labels, list(range(len(labels))))
    sample = sampler.sample()
    sampled = {s.label: s.sampled for s in sample.strata}
    population = {s.label: s.population for s in sample.strata}
    assert population == {"buy": 20_000, "review": 5_000, "rare": 3, "odd": 9}
    assert sample.size == 300
    assert sample.population == 25_012
    assert sampled["rare"] == 3
    assert 5 <= sampled["odd"] <= 9
    assert 0.65 < sampled["buy"] / (sampled["buy"] + sampled["review"]) < 0.95
    for stratum in sample.strata:
        assert len(set(stratum.positions)) == stratum.sampled
        assert all(labels[p] == stratum.label for p in stratum.positions)
        assert list(stratum.items) == list(stratum.positions)  # items as offered


def test_every_row_is_sampled_when_the_input_is_smaller_than_the_sample():
    """A census: every stratum sampled in full."""
    labels = strata_of({"a": 50, "b": 20})
    sampler = StratifiedSampler(size=100)
    sampler.offer(labels, list(range(70)))
    assert all(s.sampled == s.population for s in sampler.sample().strata)


def test_more_strata_than_the_size_allows_still_quotes_every_name():
    """The minimums win: 30 names x 5 rows make a sample of 150 where 100 were asked."""
    labels = strata_of({f"event{n}": 40 for n in range(30)})
    sampler = StratifiedSampler(size=100, seed=1)
    sampler.offer(labels, list(range(len(labels))))
    sample = sampler.sample()
    assert sample.size == 150
    assert {s.sampled for s in sample.strata} == {5}


def test_memory_is_bounded_by_the_sample_and_only_kept_items_are_built():
    """Rows held never exceed size + sum(min(N_h, m)); items are built for kept rows only."""
    rng = np.random.default_rng(2)
    built = 0

    def items(positions):
        nonlocal built
        built += len(positions)
        return [f"body{p}" for p in positions]

    sampler = StratifiedSampler(size=200, seed=3)
    for batch in range(40):
        names = rng.choice(["buy", "review", "signup"], 5_000, p=[0.7, 0.25, 0.05])
        if batch == 30:  # a name that appears late, once
            names[17] = "late"
        sampler.offer(names, items)
        assert sampler.retained <= sampler.capacity <= 200 + 4 * 5
    assert sampler.offered == 200_000
    assert built < 5_000  # about 200 (1 + ln(1000)) replacements, not 200,000 rows
    assert "late" in {s.label for s in sampler.sample().strata}


def uniform_inclusion_statistic(counts, trials):
    """Chi-square of a stratum's per-row inclusion counts against equal inclusion, per degree
    of freedom (about 1 when every row is equally likely to be sampled)."""
    mean = counts.mean()
    chi2 = ((counts - mean) ** 2).sum() / (mean * (1 - mean / trials))
    return chi2 / (len(counts) - 1)


def test_rows_of_a_stratum_are_equally_likely_to_be_sampled():
    """Over 600 seeds, each stratum's rows are sampled about equally often."""
    labels = strata_of({"big": 300, "mid": 60, "rare": 7}, seed=5)
    trials = 600
    counts = np.zeros(len(labels))
    for seed in range(trials):
        sampler = StratifiedSampler(size=40, seed=seed)
        for start in range(0, len(labels), 100):
            sampler.offer(labels[start : start + 100], lambda p, s=start: (p + s).tolist())
        for stratum in sampler.sample().strata:
            counts[list(stratum.positions)] += 1
    for name in ("big", "mid", "rare"):
        per_row = counts[labels == name]
        df = len(per_row) - 1
        assert abs(uniform_inclusion_statistic(per_row, trials) - 1) < 5 * math.sqrt(2 / df)
    # the check itself sees a bias: rows of the first half twice as likely
    biased = np.where(np.arange(300) < 150, 80.0, 40.0)
    assert uniform_inclusion_statistic(biased, trials) > 1 + 5 * math.sqrt(2 / 299)


def test_the_same_seed_and_input_give_the_same_sample_whatever_the_batches():
    """Batches of 1, 7, 500 or everything at once: the same sample; another seed: another."""
    labels = strata_of({"a": 900, "b": 300, "c": 4})

    def sample(batch, seed=11):
        sampler = StratifiedSampler(size=50, seed=seed)
        for start in range(0, len(labels), batch):
            part = labels[start : start + batch]
            sampler.offer(part, [f"row{start + i}" for i in range(len(part))])
        return sampler.sample()

    first = sample(len(labels))
    assert sample(1) == sample(7) == sample(500) == first
    assert sample(500, seed=12) != first


def test_items_may_be_a_series_read_by_position():
    """A batch's Series keeps its file index; the sampler reads it by position."""
    frame = pd.DataFrame({"event": ["a", "b"] * 10, "body": [f"b{i}" for i in range(20)]})
    sampler = StratifiedSampler(size=4)
    for start in (0, 10):
        part = frame.iloc[start : start + 10]
        sampler.offer(part["event"], part["body"])
    for stratum in sampler.sample().strata:
        assert list(stratum.items) == [f"b{p}" for p in stratum.positions]


def test_a_sample_can_be_taken_before_anything_is_offered_and_mid_pass():
    """sample() at any time, and the pass goes on."""
    sampler = StratifiedSampler(size=10)
    assert sampler.sample().strata == ()
    assert sampler.sample().size == 0
    sampler.offer(["a"] * 30, list(range(30)))
    assert sampler.sample().size == 10
    sampler.offer(["b"] * 30, list(range(30, 60)))
    assert {s.label for s in sampler.sample().strata} == {"a", "b"}


def test_the_sampler_refuses_bad_arguments_in_one_line():
    """size >= 1, min_per_stratum >= 2, no missing label, one item per position."""
    with pytest.raises(ConfigError, match="size="):
        StratifiedSampler(size=0)
    with pytest.raises(ConfigError, match="min_per_stratum=5"):
        StratifiedSampler(min_per_stratum=1)
    with pytest.raises(ConfigError, match="valid rows only"):
        StratifiedSampler().offer(["a", None], ["x", "y"])
    with pytest.raises(ConfigError, match="one item per row"):
        StratifiedSampler().offer(["a", "b"], ["x"])
    with pytest.raises(ConfigError, match="one item per position"):
        StratifiedSampler().offer(["a", "b"], lambda positions: ["x"])


def test_offering_a_million_rows_is_fast_and_memory_does_not_grow_with_them():
    """1M rows in batches of 50k, a sample of 400: well under 2 s of CPU, and the memory the
    pass allocates is the same for 1M rows as for 100k."""
    labels = pd.Series(strata_of({"buy": 700_000, "review": 250_000, "signup": 50_000}))

    def run(rows):
        sampler = StratifiedSampler(size=400, seed=3)
        for start in range(0, rows, 50_000):
            sampler.offer(labels[start : start + 50_000], lambda p, s=start: (p + s).tolist())
        return sampler

    run(100_000)  # warm up imports and caches
    tracemalloc.start()
    run(100_000)
    small_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    started = time.process_time()
    sampler = run(1_000_000)
    cpu = time.process_time() - started
    big_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert cpu < 2.0, f"{cpu:.2f} s of CPU"
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)
    assert sampler.retained <= sampler.capacity == 400 + 15


# --- Student's t quantiles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706204736174698),
        (0.975, 2, 4.302652729749464),
        (0.975, 3, 3.182446305284263),
        (0.975, 5, 2.570581835636314),
        (0.975, 10, 2.228138851986274),
        (0.975, 30, 2.042272456301238),
        (0.975, 100, 1.983971518523553),
        (0.995, 1, 63.65674116287399),
        (0.995, 10, 3.169272672616890),
        (0.95, 4, 2.131846786326649),
        (0.975, math.inf, 1.959963984540054),
    ],
)
def test_t_quantiles_match_the_tables(p, df, expected):
    """Published values, to 1e-9."""
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-9)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, rel=1e-9)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.9999])
def test_t_quantiles_match_the_closed_forms_of_one_and_two_degrees(p):
    """df=1 is Cauchy, df=2 has a closed form too."""
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


@pytest.mark.parametrize("df", [0.7, 2.5, 7.3, 55.5])
def test_t_quantiles_of_fractional_degrees_integrate_to_p(df):
    """Satterthwaite's df are fractional: the density integrated up to the quantile is p."""
    q = t_quantile(0.975, df)
    x = np.linspace(0, q, 200_001)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_norm - (df + 1) / 2 * np.log1p(x * x / df))
    area = (x[1] - x[0]) * (density.sum() - (density[0] + density[-1]) / 2)
    assert 0.5 + area == pytest.approx(0.975, abs=1e-8)


def test_t_quantile_refuses_bad_arguments():
    """0 < p < 1 and df > 0."""
    for p, df in ((0, 5), (1, 5), (0.5, 0)):
        with pytest.raises(ConfigError, match="t_quantile"):
            t_quantile(p, df)


# --- The estimators ----------------------------------------------------------------------------


def test_the_total_is_exact_when_every_row_is_sampled():
    """A census has no sampling variance: low == value == high == the true total."""
    estimate = estimate_total([(3, [1.0, 0.0, 7.5]), (1, [4.0])])
    assert (estimate.value, estimate.low, estimate.high) == (12.5, 12.5, 12.5)
    assert estimate.std_error == 0
    assert estimate.df == math.inf
    assert estimate.observed == 12.5


def test_the_total_follows_the_stratified_formulas():
    """T = sum N_h mean_h, v = sum N_h^2 (1 - f_h) s_h^2 / n_h, Satterthwaite's df, and a
    symmetric t interval for symmetric samples."""
    estimate = estimate_total([(10, [1, 2, 3]), (4, [0, 8])], nonnegative=False)
    terms = [10**2 * (1 - 3 / 10) * 1.0 / 3, 4**2 * (1 - 2 / 4) * 32.0 / 2]
    df = sum(terms) ** 2 / (terms[0] ** 2 / 2 + terms[1] ** 2 / 1)
    half_width = t_quantile(0.975, df) * math.sqrt(sum(terms))
    assert estimate.value == 36
    assert estimate.std_error == pytest.approx(math.sqrt(sum(terms)))
    assert estimate.df == pytest.approx(df)
    assert estimate.low == pytest.approx(36 - half_width)
    assert estimate.high == pytest.approx(36 + half_width)


def test_right_skewed_values_stretch_the_interval_upwards():
    """Mostly 0 with a few large values: the interval reaches further above than below; the
    same values negated give the mirror image."""
    values = [0.0] * 40 + [5.0] * 8 + [120.0, 300.0]
    right = estimate_total([(5_000, values)], nonnegative=False)
    left = estimate_total([(5_000, [-v for v in values])], nonnegative=False)
    assert right.high - right.value > 1.1 * (right.value - right.low)
    assert (left.low, left.high) == pytest.approx((-right.high, -right.low))


def test_the_low_bound_of_a_non_negative_total_is_at_least_what_was_sampled():
    """Sampled rows are part of the input: their total is a hard floor; per_row_max a ceiling."""
    hits = estimate_total([(1_000, [1, 0, 0, 0, 0]), (2, [1, 1])], per_row_max=1)
    assert hits.observed == 3
    assert hits.low >= 3
    assert hits.high <= 3 + 995
    assert estimate_total([(10, [0, 0]), (5, [0])]).low == 0


def test_a_stratum_of_one_sampled_row_borrows_a_variance():
    """n_h = 1 has no s_h^2: it borrows the largest of the others; with none, no upper bound."""
    estimate = estimate_total([(100, [5.0]), (50, [1.0, 2.0, 3.0, 4.0])])
    s2 = np.var([1.0, 2.0, 3.0, 4.0], ddof=1)
    expected = 100**2 * 0.99 * s2 + 50**2 * (1 - 4 / 50) * s2 / 4
    assert estimate.std_error == pytest.approx(math.sqrt(expected))
    alone = estimate_total([(100, [5.0])])
    assert (alone.value, alone.low, alone.high) == (500.0, 5.0, math.inf)


def test_the_estimators_refuse_bad_input_in_one_line():
    """Sample sizes from 1 to N_h, finite values, the bounds given, a probability."""
    bad = [
        ([(2, [1, 2, 3])], {}, "3 sampled values"),
        ([(2, [])], {}, "0 sampled values"),
        ([(5, [1, math.nan])], {}, "finite"),
        ([(5, [1, -2])], {}, "nonnegative=False"),
        ([(5, [1, 2])], {"per_row_max": 1}, "per_row_max"),
        ([(5, [1, 2])], {"confidence": 95}, "confidence"),
        ([], {}, "no strata"),
    ]
    for strata, options, message in bad:
        with pytest.raises(ConfigError, match=message):
            estimate_total(strata, **options)


def test_the_interval_holds_the_true_points_in_most_of_100_trials(shop):
    """n = 300 and 400 of 3,000 rows: the 95% interval covers in at least 90 of 100 trials,
    and the estimate at n = 300 is within 25% of the truth in at least 95 of them."""
    covered, errors = coverage_of_points(shop, 300)
    assert covered >= 90, covered
    assert (errors <= 0.25).sum() >= 95, np.quantile(errors, [0.5, 0.9, 1.0])
    covered, _ = coverage_of_points(shop, 400)
    assert covered >= 90, covered


@pytest.mark.slow
@pytest.mark.parametrize("size", [300, 400])
def test_the_interval_holds_the_true_points_of_a_million_rows(big_shop, size):
    """n = 300 and 400 of 1M rows: the 95% interval covers in at least 90 of 100 trials."""
    covered, _ = coverage_of_points(big_shop, size)
    assert covered >= 90, covered


def test_the_share_of_rows_is_exact_for_a_census_and_never_a_point_otherwise():
    """A census is exact; a sample without a flag still leaves room for some."""
    census = estimate_share([(4, [1, 0, 0, 1]), (2, [1, 1])])
    assert (census.value, census.low, census.high, census.std_error) == (4 / 6, 4 / 6, 4 / 6, 0)
    none_seen = estimate_share([(10_000, [0] * 300)])
    assert none_seen.value == none_seen.low == 0
    assert 0.005 < none_seen.high < 0.03  # Wilson; about 3/n, the rule of three
    bounded = estimate_share([(100, [1, 1, 0]), (3, [1, 1, 1])])
    assert bounded.low >= 5 / 103
    assert bounded.high <= 1 - 1 / 103
    with pytest.raises(ConfigError, match="0/1"):
        estimate_share([(10, [0.5, 1])])


def test_the_share_of_rows_whose_customer_is_missing_covers_in_most_trials(shop):
    """95% Wilson intervals on the effective sample size: at least 90 of 100 trials."""
    truth = shop.missing.mean()
    covered = 0
    for seed in range(100):
        sample = shop.sample(300, seed)
        estimate = estimate_share(sample.per_stratum(lambda row: shop.missing[row]))
        covered += estimate.low <= truth <= estimate.high
    assert covered >= 90, covered


def test_distinct_customers_are_exact_for_a_census_and_counted_once():
    """Every row sampled: each flagged customer counted once, whatever its rows."""
    strata = [(3, ["a", "a", "b"], [1, 1, 0]), (2, ["a", "c"], [1, 1])]
    estimate = estimate_distinct(strata, rows_per_customer={"a": 3, "b": 1, "c": 1})
    assert (estimate.value, estimate.low, estimate.high, estimate.observed) == (2, 2, 2, 2)


def test_distinct_customers_refuse_inconsistent_flags_and_short_counts():
    """A flag belongs to the customer; m_c counts every row of it in the input."""
    with pytest.raises(ConfigError, match="some rows and not others"):
        estimate_distinct([(5, ["a", "a"], [1, 0])], rows_per_customer={"a": 5})
    with pytest.raises(ConfigError, match="rows_per_customer"):
        estimate_distinct([(5, ["a", "a"], [1, 1])], rows_per_customer={"a": 1})
    with pytest.raises(ConfigError, match="rows_per_customer"):
        estimate_distinct([(5, ["a"], [1])], rows_per_customer={})


def test_distinct_missing_customers_are_estimated_without_counting_busy_ones_twice(shop):
    """The multiplicity estimator covers the customers a live send would create in at least
    90 of 100 trials, where scaling up the sampled customers would count busy ones many times."""
    truth = len(np.unique(shop.customer[shop.missing]))
    covered, naive = 0, []
    for seed in range(100):
        sample = shop.sample(300, seed)
        strata = [
            (s.population, [shop.customer[r] for r in s.items], [shop.missing[r] for r in s.items])
            for s in sample.strata
        ]
        estimate = estimate_distinct(strata, rows_per_customer=shop.rows_per_customer)
        covered += estimate.low <= truth <= estimate.high
        naive.append(estimate.observed * len(shop.points) / sample.size)
    assert covered >= 90, covered
    assert np.median(naive) > 1.5 * truth


def test_the_examples_in_the_docstrings_run():
    """The docstrings' examples are true."""
    assert doctest.testmod(sampling).failed == 0
    assert doctest.testmod(estimates).failed == 0
