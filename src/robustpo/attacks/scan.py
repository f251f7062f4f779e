"""Scans over a learned attack's configurations: train each candidate, screen it on episodes
disjoint from the evaluation's, keep the one with the lowest screened return, and retrain the
kept configuration with further seeds (REFERENCE section 4: the reference protocols scan
adversary hyperparameters and keep the lowest return).

The plan of a scan (:class:`ScanPlan`) is the protocol's: ``quick`` trains one configuration
once; ``paper`` covers the reference grid's axes at the reference budgets. Every candidate,
with its screened return, is recorded (:attr:`ScanResult.candidates`) and ends up in
``attack.json``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import torch

from ..core.envs import set_simulator_threads
from ..errors import ConfigError

SCREEN_SEED = 100_000  # screening episodes start here: never among the evaluation's seeds
# Seeds disagree only when they differ by more than this share of the first seed's screened
# return: on a victim whose attacked returns hardly vary, the CI is a few points wide and
# seeds 1% apart would otherwise count as a search that has not converged.
SEED_TOLERANCE = 0.05
WORKERS_VARIABLE = "ROBUSTPO_WORKERS"

Item = TypeVar("Item")
Out = TypeVar("Out")
_WORK: Any = None  # the function forked workers run (inherited, never pickled)


def _run_work(item: Any) -> Any:
    return _WORK(item)


def scan_workers() -> int:
    """Processes a scan trains its candidates in, side by side: the environment variable
    ``ROBUSTPO_WORKERS`` if set (a sweep sets it to its trial's CPUs), else one per core.

    Raises:
        ConfigError: ``ROBUSTPO_WORKERS`` is not a positive integer.
    """
    raw = os.environ.get(WORKERS_VARIABLE)
    if raw is None:
        return os.cpu_count() or 1
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{WORKERS_VARIABLE}={raw!r}: give a positive number of processes.")
    return int(raw)


def side_by_side(work: Callable[[Item], Out], items: list[Item], workers: int | None = None,
                 done: Callable[[int], None] | None = None) -> list[Out]:
    """``[work(item) for item in items]``, computed in up to ``workers`` forked processes
    (default :func:`scan_workers`; one torch thread and one simulator thread each), in order;
    ``done(n)`` is called as the first n results are in (a progress display).

    The workers inherit ``work`` and everything it refers to (the victim agent) by fork; only
    the items and the results cross the pipe, so both must be picklable and small (return
    where a trained model was saved, not the model). With one worker or one item, the work
    runs here. Fork with threads alive in the parent is safe here because every pool and
    simulator thread the work uses is created inside the worker.
    """
    global _WORK
    results: list[Out] = []
    workers = workers or scan_workers()
    if workers <= 1 or len(items) <= 1:
        for item in items:
            results.append(work(item))
            if done is not None:
                done(len(results))
        return results

    def one(item: Item) -> Out:
        torch.set_num_threads(1)
        set_simulator_threads(1)  # the workers already use every core
        return work(item)

    _WORK = one
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=context) as pool:
            for out in pool.map(_run_work, items):
                results.append(out)
                if done is not None:
                    done(len(results))
    finally:
        _WORK = None
    return results


@dataclass(frozen=True)
class ScanPlan:
    """What a protocol trains for one learned attack.

    Attributes:
        steps: environment steps per adversary.
        configs: overrides of the victim task's PPO recipe, one mapping per configuration
            (``{}`` is the task's own recipe: the plain reference configuration).
        seeds: training seeds of the kept configuration (>= 2 tells a lucky seed from a
            converged search).
        screen_episodes: episodes each candidate is screened on (0: no screening, only
            possible with a single candidate).
        rungs: successive halving (Jamieson and Talwalkar 2016; Li et al. 2018, Hyperband):
            the fractions of ``steps`` at which the surviving configurations are screened;
            after each rung but the last, the better half (rounded up) of them trains on.
            ``(1.0,)``: every configuration trains to the full budget. The plain reference
            configuration ``{}`` is never stopped: it always trains to the full budget, so a
            scan is at least as strong as the reference protocol's own adversary at its
            budget. Each configuration keeps its full-budget schedule (its learning rate
            anneals over ``steps``); a paused one resumes exactly where it stopped.

    Raises:
        ValueError: several candidates (``configs`` or ``seeds`` > 1) with
            ``screen_episodes`` 0, or ``rungs`` not strictly increasing in (0, 1] to 1.0
            (plans are the library's constants, so this is a programming error).
    """

    steps: int
    configs: tuple[dict[str, Any], ...] = ({},)
    seeds: int = 1
    screen_episodes: int = 10
    rungs: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.screen_episodes == 0 and (len(self.configs) > 1 or self.seeds > 1):
            raise ValueError("a scan of several candidates needs screening episodes")
        if (not self.rungs or self.rungs[-1] != 1.0
                or any(not 0 < a < b for a, b in zip(self.rungs, self.rungs[1:]))):
            raise ValueError(f"rungs must increase to 1.0, got {self.rungs}")


@dataclass
class Candidate:
    """One trained candidate: its configuration, seed, screened return (mean and 95% CI
    over the screening episodes; None when the plan does not screen) at the fraction of the
    budget it reached (``budget``: below 1.0 when successive halving stopped it), and training
    curve (the victim's return during the adversary's training at the end of each eighth of
    the full budget, as far as it got)."""

    config: dict[str, Any]
    seed: int
    screen_mean: float | None = None
    screen_ci95: tuple[float, float] | None = None
    training_curve: list[float | None] = field(default_factory=list)
    budget: float = 1.0
    model: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The candidate without its model."""
        out = asdict(self)
        out.pop("model")
        if self.screen_ci95 is not None:
            out["screen_ci95"] = list(self.screen_ci95)
        return out


@dataclass
class ScanResult:
    """Every candidate and the kept one (the lowest screened return).

    Attributes:
        candidates: the configurations with the first seed (those successive halving
            stopped first, then those trained to the full budget), then the kept
            configuration's further seeds.
        kept: the candidate whose model attacks.
        seeds_disagree: a further seed of the kept configuration screened outside the first
            seed's 95% CI and more than ``SEED_TOLERANCE`` of its return away
            (:func:`seeds_disagree`; the search has not converged).
    """

    candidates: list[Candidate]
    kept: Candidate
    seeds_disagree: bool

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``attack.json``."""
        return {"candidates": [c.to_json() for c in self.candidates],
                "kept": self.kept.to_json(), "seeds_disagree": self.seeds_disagree}


Evaluated = tuple[Any, float | None, tuple[float, float] | None, list[float | None]]


def run_scan(
    plan: ScanPlan, seed: int,
    evaluate: Callable[[list[tuple[dict[str, Any], int, float]]], list[Evaluated]],
) -> ScanResult:
    """Train and screen every configuration of ``plan`` (by successive halving over
    ``plan.rungs``), then the kept one's further seeds (beside the last rung when a single
    configuration reaches it).

    Args:
        plan: the protocol's plan.
        seed: the first training seed; further seeds are ``seed + 1, seed + 2, ...``.
        evaluate: ``[(config, seed, budget), ...] -> [(model, screen mean, screen 95% CI,
            training curve), ...]``: trains (or loads, or resumes) candidates up to the
            fraction ``budget`` of their steps and screens them, in any order of work (side
            by side, one per core), returning them in the order given; the model may be None
            below the full budget, the screen is None when the plan does not screen.

    Returns:
        The scan; ``kept`` has the lowest screened return among the candidates trained to
        the full budget (the plain reference configuration, if planned, always among them).
    """
    def candidates(items: list[tuple[dict[str, Any], int, float]]) -> list[Candidate]:
        return [Candidate(dict(config), s, mean, ci, list(curve), budget, model)
                for (config, s, budget), (model, mean, ci, curve)
                in zip(items, evaluate(items), strict=True)]

    def rank(c: Candidate) -> float:
        return 0.0 if c.screen_mean is None else c.screen_mean

    alive, stopped = list(plan.configs), []
    for k, budget in enumerate(plan.rungs):
        final = k == len(plan.rungs) - 1
        items = [(config, seed, budget) for config in alive]
        if final and len(alive) == 1:
            # The kept configuration is known: its further seeds train beside it, so that
            # no core idles while the last candidate finishes.
            items += [(alive[0], seed + j, 1.0) for j in range(1, plan.seeds)]
        rung = candidates(items)
        if final:
            break
        ranked = sorted(rung, key=rank)
        survivors = {id(c) for c in ranked[: (len(ranked) + 1) // 2]}
        survivors |= {id(c) for c in rung if not c.config}  # the plain recipe: see ScanPlan
        stopped += [c for c in ranked if id(c) not in survivors]
        alive = [c.config for c in rung if id(c) in survivors]
    if len(alive) == 1:
        rung, more = rung[:1], rung[1:]
        best = rung[0]
    else:
        best = min(rung, key=rank)
        more = candidates([(best.config, seed + k, 1.0) for k in range(1, plan.seeds)])
    kept = min([best, *more], key=rank)
    disagree = any(seeds_disagree(best.screen_mean, best.screen_ci95, c.screen_mean)
                   for c in more)
    return ScanResult([*stopped, *rung, *more], kept, disagree)


def seeds_disagree(first_mean: float | None, first_ci95: tuple[float, float] | None,
                   other_mean: float | None) -> bool:
    """Whether a further seed's screened mean return ``other_mean`` disagrees with the first
    seed's: outside its 95% CI and more than ``SEED_TOLERANCE`` (5%) of its magnitude away.
    False when either was not screened."""
    if first_mean is None or first_ci95 is None or other_mean is None:
        return False
    outside = not first_ci95[0] <= other_mean <= first_ci95[1]
    return outside and abs(other_mean - first_mean) > SEED_TOLERANCE * abs(first_mean)
