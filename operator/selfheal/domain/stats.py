"""Statistics for canary-vs-stable comparisons: binomial tails, quantiles and the Mann-Whitney rank test."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Literal

# ---------------------------------------------------------------------------------------------
# Binomial tails, computed exactly by summing terms outward from the observed count until they
# no longer change the sum. The terms shrink geometrically away from the mean, so the number of
# terms is of the order of a few standard deviations, not of the total count.
# ---------------------------------------------------------------------------------------------

_REL_EPS = 1e-15


def _log_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def _sum_up(x: int, n: int, p: float) -> float:
    """sum_{k=x..n} pmf(k); meant for x above the mean."""
    term = math.exp(_log_pmf(x, n, p))
    total = 0.0
    odds = p / (1.0 - p)
    k = x
    while k <= n and term > 0.0:
        total += term
        if term < total * _REL_EPS:
            break
        term *= (n - k) / (k + 1) * odds
        k += 1
    return total


def _sum_down(x: int, n: int, p: float) -> float:
    """sum_{k=0..x} pmf(k); meant for x below the mean."""
    term = math.exp(_log_pmf(x, n, p))
    total = 0.0
    inv_odds = (1.0 - p) / p
    k = x
    while k >= 0 and term > 0.0:
        total += term
        if term < total * _REL_EPS:
            break
        term *= k / (n - k + 1) * inv_odds
        k -= 1
    return total


def binom_sf(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p)."""
    if x <= 0:
        return 1.0
    if x > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if x > n * p:
        return min(1.0, _sum_up(x, n, p))
    return max(0.0, 1.0 - _sum_down(x - 1, n, p))


def binom_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p)."""
    if x < 0:
        return 0.0
    if x >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if x < n * p:
        return min(1.0, _sum_down(x, n, p))
    return max(0.0, 1.0 - _sum_up(x + 1, n, p))


def compare_counts(
    canary_count: int, stable_count: int, canary_events: int, stable_events: int
) -> tuple[Literal["up", "down", "same"], float]:
    """Conditional binomial test of equal rates.

    Given the template occurred ``k = canary_count + stable_count`` times, under equal rates its
    canary share follows Binomial(k, canary_events / (canary_events + stable_events)). Returns the
    direction of the observed difference and the one-sided p-value in that direction.
    """
    k = canary_count + stable_count
    share = canary_events / (canary_events + stable_events)
    canary_rate = canary_count / canary_events
    stable_rate = stable_count / stable_events
    if canary_rate > stable_rate:
        return "up", binom_sf(canary_count, k, share)
    if canary_rate < stable_rate:
        return "down", binom_cdf(canary_count, k, share)
    return "same", binom_sf(canary_count, k, share)


def share_test(part_canary: int, all_canary: int, part_stable: int, all_stable: int) -> float:
    """One-sided p-value that a value's share of the canary's events exceeds its share of the stable's.

    Fisher's exact test conditioned on the value's total, approximated by the binomial test of
    ``compare_counts`` against the other values of the same field (exact when the value is rare).
    """
    rest_canary = all_canary - part_canary
    rest_stable = all_stable - part_stable
    if part_canary == 0 or all_stable == 0:
        return 1.0
    if rest_canary + rest_stable == 0:
        return 1.0
    direction, p = compare_counts(part_canary, part_stable, all_canary, all_stable)
    return p if direction == "up" else 1.0


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def mann_whitney_greater(canary: Sequence[float], stable: Sequence[float]) -> tuple[float, float]:
    """One-sided Mann-Whitney U test that canary values tend to be larger than stable values.

    Returns the p-value (normal approximation with tie correction and continuity correction) and
    the effect size as the probability of superiority, P(canary > stable) + P(equal) / 2 (0.5:
    no shift, 1.0: every canary value is larger). O(n log n) over the distinct values: U counts,
    for each canary value, the stable values below it and half of those equal to it.
    """
    n1, n2 = len(canary), len(stable)
    if n1 == 0 or n2 == 0:
        return 1.0, 0.5
    in_canary, in_stable = Counter(canary), Counter(stable)
    twice_u = 0  # 2U, an integer: no rounding on the way
    tie_term = 0
    below = 0
    for value in sorted(in_canary.keys() | in_stable.keys()):
        c, s = in_canary[value], in_stable[value]
        twice_u += c * (2 * below + s)
        t = c + s
        tie_term += t**3 - t
        below += s
    u = twice_u / 2.0
    n = n1 + n2
    effect = u / (n1 * n2)
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0.0:
        return (0.0 if u > mean else 1.0), effect
    z = (u - mean - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2.0)), effect
