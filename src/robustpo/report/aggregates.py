"""Aggregate statistics of many agents per method with rliable (Agarwal et al., NeurIPS 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice"): interquartile mean,
median and mean with stratified-bootstrap 95% confidence intervals, the probability of
improvement between two methods, and performance profiles.

Scores are one number per agent (a run's natural or worst-case return, undiscounted episode
return), one environment at a time: rliable's ``(runs, tasks)`` matrices with one task.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# rliable passes arch's bootstrap a RandomState, which arch deprecates in favour of a Generator
warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)

AGGREGATES = ("IQM", "median", "mean")
BOOTSTRAP_REPS = 2000
IMPROVEMENT_REPS = 1000  # each replicate runs a Mann-Whitney U test per pair of methods


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval ``(low, high)``."""

    point: float
    low: float
    high: float


def _matrix(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64).reshape(-1, 1)


def aggregate_estimates(scores: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                        seed: int = 0) -> dict[str, dict[str, Estimate]]:
    """Method -> aggregate (:data:`AGGREGATES`) -> estimate over the method's agents
    (``scores[method]``: ``(runs,)``), with stratified-bootstrap percentile 95% CIs."""
    from rliable import library as rly
    from rliable import metrics

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x),
                         metrics.aggregate_mean(x)])

    points, intervals = rly.get_interval_estimates(
        {m: _matrix(v) for m, v in scores.items()}, aggregates, reps=reps,
        random_state=np.random.RandomState(seed))
    return {m: {name: Estimate(float(points[m][k]), float(intervals[m][0, k]),
                               float(intervals[m][1, k]))
                for k, name in enumerate(AGGREGATES)} for m in scores}


def improvement_probabilities(scores: dict[str, np.ndarray], reps: int = IMPROVEMENT_REPS,
                              seed: int = 0) -> dict[tuple[str, str], Estimate]:
    """``(X, Y)`` -> P(X > Y): the probability that an agent of method X scores higher than
    one of method Y (ties count half; the Mann-Whitney U statistic over all pairs), with a
    stratified-bootstrap 95% CI; for every ordered pair of distinct methods."""
    from rliable import library as rly
    from rliable import metrics

    pairs = {(x, y): (_matrix(scores[x]), _matrix(scores[y]))
             for x in scores for y in scores if x != y}
    if not pairs:
        return {}
    keyed = {f"{x}\x00{y}": v for (x, y), v in pairs.items()}
    points, intervals = rly.get_interval_estimates(
        keyed, metrics.probability_of_improvement, reps=reps,
        random_state=np.random.RandomState(seed))
    return {tuple(k.split("\x00")): Estimate(float(np.ravel(points[k])[0]),
                                             float(np.ravel(intervals[k])[0]),
                                             float(np.ravel(intervals[k])[1]))
            for k in keyed}


def performance_profiles(scores: dict[str, np.ndarray], thresholds: np.ndarray,
                         reps: int = BOOTSTRAP_REPS, seed: int = 0
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Method -> (the fraction of its agents scoring above each threshold ``(T,)``, the 95%
    CI ``(2, T)``) (rliable's score distributions)."""
    from rliable import library as rly

    state = np.random.get_state()  # rliable draws from numpy's global generator here
    np.random.seed(seed)
    try:
        profiles, cis = rly.create_performance_profile(
            {m: _matrix(v) for m, v in scores.items()}, thresholds, reps=reps)
    finally:
        np.random.set_state(state)
    return {m: (np.asarray(profiles[m]), np.asarray(cis[m])) for m in scores}
