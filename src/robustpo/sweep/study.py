"""Study files: what a sweep trains and attacks, read from YAML and checked before any work.

A study is a set of trials; a trial is one ``robustpo train`` run (method, environment, seed,
config overrides) followed by one ``robustpo attack`` suite, leaving an ordinary run
directory ``OUT/<trial name>``. The file::

    name: barppo-hopper-17          # the study's name (default: the file's stem)
    out: studies/barppo-hopper-17   # run directories go here (default: studies/<name>)
    methods: [barppo]               # --algo values
    envs: [Hopper-v5]               # Gymnasium ids
    seeds: 17                       # a count (seeds 0..16) or a list of seeds
    steps: 2000000                  # training steps (default: each preset's)
    preset: null                    # as `robustpo train --preset` (default: <algo>-<env>)
    set: {policy_lr: 1.0e-4}        # fixed config values, as --set
    grid: {kappa: [0.1, 0.3, 1.0]}  # config values to cross with methods x envs x seeds
    attack:                         # the suite each trial ends with (omit: train only)
      attacks: all                  # 'all', a comma-separated string or a list
      protocol: paper               # quick | paper
      episodes: 50
      target: observation           # observation | action
      eps: null                     # default: the agent's own (action: 0.1)
    resources: {cpus_per_trial: 1, max_failures: 2}
    search:                         # a tuning study instead of (or beside) a grid
      space: {kappa: {loguniform: [0.03, 3.0]}, policy_lr: {choice: [1.0e-4, 3.0e-4]}}
      samples: 16                   # configurations drawn
      metric: episode_return        # a training metric, or natural / worst_case (attack)
      mode: max                     # max | min
      algorithm: optuna             # optuna (TPE) | random
      scheduler: asha               # asha | none (ASHA needs a training metric)
      grace_period: 10              # ASHA: iterations before a trial can be stopped
      reduction_factor: 3

This module knows nothing of Ray: :mod:`robustpo.sweep.tuner` turns a :class:`Study` into Tune
trials.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adversaries.base import method_class
from ..attacks.base import PROTOCOLS, TARGETS
from ..core.envs import check_env_id
from ..errors import ConfigError, UnknownNameError
from ..results.suite import resolve_attack_names
from ..training.callbacks import RUN_METRICS
from ..training.presets import load_yaml_mapping, qualify, resolve_config

KEYS = ("name", "out", "methods", "envs", "seeds", "steps", "preset", "set", "grid", "attack",
        "resources", "search")
# Metrics reported once, after a trial's attack suite.
ATTACK_METRICS = ("natural", "worst_case")
# Sampling distributions of a search space: name -> number of arguments.
DISTRIBUTIONS = {"uniform": 2, "loguniform": 2, "randint": 2, "choice": None}
SEARCH_ALGORITHMS = ("optuna", "random")
SCHEDULERS = ("asha", "none")


@dataclass(frozen=True)
class AttackSpec:
    """The attack suite a trial ends with (``robustpo attack`` options).

    Attributes:
        attacks: attack names (resolved from ``all`` or a list).
        protocol: ``quick`` or ``paper`` (learned attacks' budgets and search).
        episodes: evaluation episodes per attack.
        target: ``observation`` (eps in normalised observation units) or ``action`` (eps in
            half-ranges of the action space).
        eps: l_inf radius; None takes the agent's own (0.1 for actions).
        seed: seed of the first evaluation episode and of the attacks.
    """

    attacks: tuple[str, ...]
    protocol: str = "quick"
    episodes: int = 50
    target: str = "observation"
    eps: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class SearchSpec:
    """A tuning study's search (Ray Tune's search algorithm and scheduler).

    Attributes:
        space: ``{config key: (distribution, arguments)}``, distributions from
            :data:`DISTRIBUTIONS`.
        samples: configurations drawn (Tune's ``num_samples``).
        metric: what is optimised: a training metric reported every iteration
            (``episode_return``, a learner metric) or ``natural`` / ``worst_case`` (reported
            once, after the attack suite).
        mode: ``max`` or ``min``.
        algorithm: ``optuna`` (Optuna's TPE through Tune's OptunaSearch) or ``random``.
        scheduler: ``asha`` (early stopping on ``metric`` at iteration rungs) or ``none``.
        grace_period: ASHA: iterations a trial runs before it can be stopped.
        reduction_factor: ASHA: the fraction kept at each rung is 1 / reduction_factor.
    """

    space: dict[str, tuple[str, tuple[Any, ...]]]
    samples: int
    metric: str
    mode: str = "max"
    algorithm: str = "optuna"
    scheduler: str = "none"
    grace_period: int = 10
    reduction_factor: int = 3


@dataclass(frozen=True)
class TrialSpec:
    """One trial: what ``robustpo train`` is given.

    Attributes:
        algo: training method.
        env: Gymnasium id.
        seed: training seed.
        varied: the trial's grid and sampled config values.
        fixed: the study's config values common to every trial.
        sampled: whether some values were drawn from a search space (the name then carries a
            hash of them, as drawn floats do not make readable names).
    """

    algo: str
    env: str
    seed: int
    varied: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    sampled: bool = False

    @property
    def overrides(self) -> dict[str, Any]:
        """Every config value the trial sets (``--set``)."""
        return {**self.fixed, **self.varied}

    @property
    def name(self) -> str:
        """The run directory's name, e.g. ``barppo-Hopper-v5-s3-kappa0.3``."""
        name = f"{self.algo}-{self.env}-s{self.seed}"
        if self.sampled:
            digest = hashlib.sha1(json.dumps(self.varied, sort_keys=True).encode())
            return f"{name}-{digest.hexdigest()[:8]}"
        return name + "".join(f"-{k.rpartition('.')[2]}{_short(v)}"
                              for k, v in self.varied.items())


@dataclass(frozen=True)
class Study:
    """A parsed, checked study file (module docstring).

    Attributes:
        name: the study's name.
        source: the study file.
        out: directory of the run directories (absolute), also Tune's storage.
        methods, envs, seeds: crossed with each other and with ``grid``.
        steps: training steps (None: each preset's).
        preset: preset name or file, as ``robustpo train --preset``.
        fixed: config values every trial gets.
        grid: config values crossed with methods x envs x seeds.
        attack: the suite each trial ends with, or None.
        search: a tuning study's search, or None.
        cpus_per_trial: CPUs Ray reserves per trial (robustpo trains on one thread).
        max_failures: times a failed trial is retried, each from its last checkpoint.
    """

    name: str
    source: Path
    out: Path
    methods: tuple[str, ...]
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int | None
    preset: str | None
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    attack: AttackSpec | None
    search: SearchSpec | None
    cpus_per_trial: float = 1.0
    max_failures: int = 2

    def trials(self) -> list[TrialSpec]:
        """Every grid trial, in a stable order (methods, envs, seeds, then grid values).

        Raises:
            ConfigError: the study samples a search space, whose trials are drawn by Tune.
        """
        if self.search is not None:
            raise ConfigError(f"Study {self.name!r} samples a search space: its trials are "
                              f"drawn during the sweep, not listed beforehand.")
        keys = list(self.grid)
        return [TrialSpec(algo, env, seed, dict(zip(keys, values)), self.fixed)
                for algo, env, seed in itertools.product(self.methods, self.envs, self.seeds)
                for values in itertools.product(*self.grid.values())]

    def trial(self, algo: str, env: str, seed: int, varied: dict[str, Any]) -> TrialSpec:
        """The trial of one Tune configuration: ``varied`` holds its grid and sampled values."""
        return TrialSpec(algo, env, int(seed), dict(varied), self.fixed,
                         sampled=self.search is not None)

    def run_dir(self, trial: TrialSpec) -> Path:
        """Where ``trial`` leaves its run directory."""
        return self.out / trial.name


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace(" ", "").replace("/", "_")


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every trial's config is resolved once, so bad names and
    values fail here and not hours into the sweep.

    Args:
        path: the YAML study file (module docstring). A relative ``out`` is taken from the
            current directory.

    Raises:
        ConfigError: a missing file, invalid YAML, unknown or ill-typed keys, values out of
            range, or a search space that does not fit its algorithm or scheduler.
        UnknownNameError: an unknown method, environment, attack, protocol or preset.
    """
    path = Path(path)
    data = load_yaml_mapping(path, "study")
    where = f"study {path}"
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}. A study holds "
                          f"{', '.join(KEYS)}.")
    name = str(data.get("name") or path.stem)
    if Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"{where}: name must be a plain name (it names the study's directory "
                          f"under studies/), got {name!r}; put a path in out instead.")
    methods = tuple(_str_list(data, "methods", where))
    envs = tuple(_str_list(data, "envs", where))
    for method in methods:
        method_class(method)
    for env in envs:
        check_env_id(env)
    seeds = _seeds(data.get("seeds", 1), where)
    steps = data.get("steps")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"{where}: steps must be a positive integer, got {steps!r}.")
    preset = data.get("preset")
    fixed = _mapping(data, "set", where)
    grid = _mapping(data, "grid", where)
    if "seed" in grid or "seed" in fixed:
        raise ConfigError(f"{where}: seeds go in the study's seeds key, not in set or grid.")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values, got "
                              f"{values!r}.")
    clash = set(fixed) & set(grid)
    if clash:
        raise ConfigError(f"{where}: {', '.join(sorted(clash))} is both in set and in grid.")
    search = _search(data.get("search"), where)
    if search is not None and set(search.space) & (set(fixed) | set(grid)):
        raise ConfigError(f"{where}: a key is both searched and in set or grid.")
    attack = _attack(data.get("attack"), where)
    resources = _mapping(data, "resources", where)
    extra = sorted(set(resources) - {"cpus_per_trial", "max_failures"})
    if extra:
        raise ConfigError(f"{where}: unknown resources {', '.join(extra)}; resources holds "
                          f"cpus_per_trial and max_failures.")
    cpus = resources.get("cpus_per_trial", 1)
    failures = resources.get("max_failures", 2)
    if not isinstance(cpus, int | float) or cpus <= 0:
        raise ConfigError(f"{where}: resources.cpus_per_trial must be > 0, got {cpus!r}.")
    if not isinstance(failures, int) or failures < 0:
        raise ConfigError(f"{where}: resources.max_failures must be an integer >= 0.")
    out = Path(data.get("out") or Path("studies") / name).resolve()
    study = Study(name, path, out, methods, envs, seeds, steps, preset, fixed, grid, attack,
                  search, float(cpus), failures)
    _check_configs(study, where)
    return study


def _str_list(data: dict[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key)
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
            or len(set(value)) != len(value)):
        raise ConfigError(f"{where}: {key} must be a name or a non-empty list of distinct "
                          f"names, got {value!r}.")
    return value


MAX_SEEDS = 10_000  # a count beyond this is a typo, not a study


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SEEDS:
        return tuple(range(value))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        return tuple(value)
    raise ConfigError(f"{where}: seeds must be a count (1 to {MAX_SEEDS}) or a list of "
                      f"distinct seeds (>= 0), got {value!r}.")


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}.")
    return dict(value)


def _attack(value: Any, where: str) -> AttackSpec | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: attack must be a mapping (attacks, protocol, episodes, "
                          f"target, eps, seed).")
    extra = sorted(set(value) - {"attacks", "protocol", "episodes", "target", "eps", "seed"})
    if extra:
        raise ConfigError(f"{where}: unknown attack keys {', '.join(extra)}.")
    target = value.get("target", "observation")
    if target not in TARGETS:
        raise UnknownNameError("attack target", target, list(TARGETS))
    names = value.get("attacks", "all")
    names = ",".join(names) if isinstance(names, list) else str(names)
    protocol = value.get("protocol", "quick")
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, list(PROTOCOLS))
    episodes, eps, seed = value.get("episodes", 50), value.get("eps"), value.get("seed", 0)
    if not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"{where}: attack.episodes must be a positive integer.")
    if eps is not None and (not isinstance(eps, int | float) or not 0 <= eps < math.inf):
        raise ConfigError(f"{where}: attack.eps must be a number >= 0 or null.")
    if not isinstance(seed, int):
        raise ConfigError(f"{where}: attack.seed must be an integer.")
    return AttackSpec(tuple(resolve_attack_names(names, target)), protocol, episodes, target,
                      None if eps is None else float(eps), seed)


def _search(value: Any, where: str) -> SearchSpec | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("space"), dict) \
            or not value["space"]:
        raise ConfigError(f"{where}: search must be a mapping with a non-empty space.")
    extra = sorted(set(value) - {"space", "samples", "metric", "mode", "algorithm", "scheduler",
                                 "grace_period", "reduction_factor"})
    if extra:
        raise ConfigError(f"{where}: unknown search keys {', '.join(extra)}.")
    space = {}
    for key, dist in value["space"].items():
        if not isinstance(dist, dict) or len(dist) != 1:
            raise ConfigError(f"{where}: search.space.{key} must be one distribution, e.g. "
                              f"{{loguniform: [0.01, 1.0]}}; known: {', '.join(DISTRIBUTIONS)}.")
        kind, args = next(iter(dist.items()))
        if kind not in DISTRIBUTIONS:
            raise UnknownNameError("distribution", kind, list(DISTRIBUTIONS))
        arity = DISTRIBUTIONS[kind]
        if not isinstance(args, list) or not args or (arity is not None and len(args) != arity):
            raise ConfigError(f"{where}: search.space.{key}.{kind} takes "
                              f"{arity or 'a non-empty list of'} values, got {args!r}.")
        if arity == 2 and not (args[0] < args[1] and (kind != "loguniform" or args[0] > 0)):
            raise ConfigError(f"{where}: search.space.{key}.{kind} needs low < high"
                              f"{' and low > 0' if kind == 'loguniform' else ''}, got {args}.")
        space[key] = (kind, tuple(args))
    spec = SearchSpec(space, value.get("samples", 8), value.get("metric", "episode_return"),
                      value.get("mode", "max"), value.get("algorithm", "optuna"),
                      value.get("scheduler", "none"), value.get("grace_period", 10),
                      value.get("reduction_factor", 3))
    if not isinstance(spec.samples, int) or spec.samples < 1:
        raise ConfigError(f"{where}: search.samples must be a positive integer.")
    if spec.mode not in ("max", "min"):
        raise ConfigError(f"{where}: search.mode must be max or min, got {spec.mode!r}.")
    if spec.algorithm not in SEARCH_ALGORITHMS:
        raise UnknownNameError("search algorithm", spec.algorithm, list(SEARCH_ALGORITHMS))
    if spec.scheduler not in SCHEDULERS:
        raise UnknownNameError("scheduler", spec.scheduler, list(SCHEDULERS))
    if spec.scheduler == "asha" and spec.metric in ATTACK_METRICS:
        raise ConfigError(f"{where}: ASHA stops trials on a metric reported every iteration; "
                          f"{spec.metric} is known only after the attack suite. Use a training "
                          f"metric such as episode_return, or scheduler: none.")
    if not (isinstance(spec.grace_period, int) and spec.grace_period >= 1
            and isinstance(spec.reduction_factor, int) and spec.reduction_factor >= 2):
        raise ConfigError(f"{where}: search.grace_period must be >= 1 and "
                          f"search.reduction_factor >= 2.")
    return spec


def _check_configs(study: Study, where: str) -> None:
    """Resolve each method x env config once (grid values and search-space keys included)."""
    if study.search is not None:
        if study.search.algorithm == "optuna" and (
                len(study.methods) * len(study.envs) * len(study.seeds) > 1 or study.grid):
            raise ConfigError(
                f"{where}: Optuna tunes one configuration space; give one method, one env, "
                f"one seed and no grid, or use search.algorithm: random (which crosses the "
                f"samples with methods, envs, seeds and grid).")
        metric = study.search.metric
        if metric in ATTACK_METRICS and study.attack is None:
            raise ConfigError(f"{where}: search.metric {metric} needs an attack section.")
        if metric not in ATTACK_METRICS and metric not in RUN_METRICS:
            _check_learner_metric(study, metric, where)
    for algo, env in itertools.product(study.methods, study.envs):
        for key in study.search.space if study.search else ():
            qualify(key, algo, f"{where} search.space")
        for values in itertools.product(*study.grid.values()) if study.grid else [()]:
            resolve_config(algo, env, preset=study.preset, total_steps=study.steps,
                           overrides={**study.fixed, **dict(zip(study.grid, values))})


def _check_learner_metric(study: Study, metric: str, where: str) -> None:
    from ..learners.ppo import PPO_METRICS
    from ..learners.td3 import TD3_METRICS

    base = {"ppo": PPO_METRICS, "td3": TD3_METRICS}
    names = {m for algo in study.methods
             for m in [*base[method_class(algo).learner], *method_class(algo).metric_names]}
    if metric not in names:
        raise UnknownNameError("metric", metric, [*RUN_METRICS[2:], *sorted(names),
                                                  *ATTACK_METRICS])
