"""Aggregate statistics of many agents per method, as rliable defines them (Agarwal et al.,
NeurIPS 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice"):
interquartile mean, median and mean with 95% bootstrap confidence intervals, the probability
of improvement between two methods, and performance profiles.

Scores are one number per agent (a run's natural or worst-case return, undiscounted episode
return), one environment at a time: rliable's ``(runs, tasks)`` matrices with one task, where
its stratified bootstrap is the ordinary bootstrap over a method's agents. Point estimates are
rliable's own functions. The confidence intervals are percentile intervals of the same
bootstrap, drawn here for all replicates at once: rliable's bootstrap (through ``arch``) runs
a Python call per replicate and took 300 s for the zoo's nine agents, against the report's
one-minute budget; ``tests/test_report.py`` checks the intervals against rliable's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

AGGREGATES = ("IQM", "median", "mean")
BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval ``(low, high)``."""

    point: float
    low: float
    high: float


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``(reps, n)`` bootstrap replicates of the ``(n,)`` scores."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    return scores[rng.integers(0, len(scores), size=(reps, len(scores)))]


def _interval(point: float, replicates: np.ndarray) -> Estimate:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Estimate(float(point), float(low), float(high))


def _matrix(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64).reshape(-1, 1)


def aggregate_estimates(scores: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                        seed: int = 0) -> dict[str, dict[str, Estimate]]:
    """Method -> aggregate (:data:`AGGREGATES`) -> estimate over the method's agents
    (``scores[method]``: ``(runs,)``): rliable's IQM (25% trimmed mean) and mean, and the
    median over agents, with percentile bootstrap 95% CIs."""
    from rliable import metrics

    rng = np.random.default_rng(seed)
    out = {}
    for method, values in scores.items():
        samples = _resample(values, reps, rng)
        x = _matrix(values)
        out[method] = {
            "IQM": _interval(metrics.aggregate_iqm(x), stats.trim_mean(samples, 0.25, axis=1)),
            # over agents: rliable's aggregate_median is the median over tasks of each
            # task's mean score, which for one task is the mean
            "median": _interval(float(np.median(values)), np.median(samples, axis=1)),
            "mean": _interval(metrics.aggregate_mean(x), samples.mean(axis=1)),
        }
    return out


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over all pairs, along the last axes of ``x`` ``(..., nx)`` and
    ``y`` ``(..., ny)``: the Mann-Whitney U statistic over nx * ny."""
    diff = x[..., :, None] - y[..., None, :]
    return (diff > 0).mean((-2, -1)) + 0.5 * (diff == 0).mean((-2, -1))


def improvement_probabilities(scores: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                              seed: int = 0) -> dict[tuple[str, str], Estimate]:
    """``(X, Y)`` -> P(X > Y): the probability that an agent of method X scores higher than
    one of method Y (ties count half), rliable's ``probability_of_improvement``, with a
    bootstrap 95% CI; for every ordered pair of distinct methods."""
    from rliable import metrics

    rng = np.random.default_rng(seed)
    samples = {m: _resample(v, reps, rng) for m, v in scores.items()}
    out = {}
    for x in scores:
        for y in scores:
            if x != y:
                point = metrics.probability_of_improvement(_matrix(scores[x]), _matrix(scores[y]))
                out[(x, y)] = _interval(point, _improvement(samples[x], samples[y]))
    return out


def performance_profiles(scores: dict[str, np.ndarray], thresholds: np.ndarray,
                         reps: int = BOOTSTRAP_REPS, seed: int = 0
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Method -> (the fraction of its agents scoring above each threshold ``(T,)``, the 95%
    CI ``(2, T)``): rliable's score distributions."""
    rng = np.random.default_rng(seed)
    tail = (1 - CONFIDENCE) / 2 * 100
    out = {}
    for method, values in scores.items():
        values = np.asarray(values, dtype=np.float64).ravel()
        profile = (values[:, None] > thresholds).mean(0)
        replicates = (_resample(values, reps, rng)[:, :, None] > thresholds).mean(1)
        out[method] = (profile, np.percentile(replicates, [tail, 100 - tail], axis=0))
    return out
