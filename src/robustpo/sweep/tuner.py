"""Run a :class:`~robustpo.sweep.study.Study` on Ray Tune: one Tune trial per robustpo trial,
locally or on an existing Ray cluster. The only module of robustpo that imports Ray.

Two levels of fault tolerance: Tune's experiment state (``OUT/tune``) says which trials
finished, and each trial's run directory holds robustpo's own checkpoints. After the driver
is killed, ``resume=True`` restores the Tune experiment, and every unfinished trial starts its
trainable again, which continues the run directory from its newest checkpoint bit-exactly
(losing at most ``run.checkpoint_every`` iterations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RobustpoError
from .study import Study, TrialSpec
from .trial import run_trial

EXPERIMENT = "tune"  # Tune's experiment directory inside the study's out


class SweepDependencyError(RobustpoError, ImportError):
    """Ray Tune (or Optuna) is not installed."""


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SweepDependencyError(
            f"`robustpo sweep` needs Ray Tune and Optuna, which robustpo installs only on "
            f"request ({exc}). Install them with: pip install 'robustpo[sweep]' (or "
            f"pip install 'ray[tune]' optuna).") from None


def _trial_of(study: Study, config: dict[str, Any]) -> TrialSpec:
    """The robustpo trial of a Tune trial's config (:func:`_space`)."""
    return study.trial(config["algo"], config["env"], config["seed"],
                       {**config.get("grid", {}), **config.get("search", {})})


def robustpo_trial(config: dict[str, Any], study: Study) -> None:
    """The Tune function trainable: one robustpo trial, reporting to Tune. Its learned
    attacks' scans train as many candidates side by side as the trial has CPUs."""
    from ..attacks.scan import WORKERS_VARIABLE

    os.environ[WORKERS_VARIABLE] = str(max(1, int(study.cpus_per_trial)))
    run_trial(study, _trial_of(study, config), _import("ray.tune").report)


def _space(study: Study, tune: Any) -> dict[str, Any]:
    """Tune's param_space: grids over methods, envs, seeds and the grid keys; the search
    space's distributions."""
    if study.search is not None and study.search.algorithm == "optuna":
        space: dict[str, Any] = {"algo": study.methods[0], "env": study.envs[0],
                                 "seed": study.seeds[0]}
    else:
        space = {"algo": tune.grid_search(list(study.methods)),
                 "env": tune.grid_search(list(study.envs)),
                 "seed": tune.grid_search(list(study.seeds)),
                 "grid": {k: tune.grid_search(v) for k, v in study.grid.items()}}
    if study.search is not None:
        space["search"] = {key: getattr(tune, kind)(*args) if kind != "choice"
                           else tune.choice(list(args))
                           for key, (kind, args) in study.search.space.items()}
    return space


def _tune_config(study: Study, tune: Any, max_concurrent: int | None) -> Any:
    search = study.search
    if search is None:
        return tune.TuneConfig(num_samples=1, max_concurrent_trials=max_concurrent,
                               trial_dirname_creator=_dirname(study))
    algorithm = scheduler = None
    if search.algorithm == "optuna":
        _import("optuna")
        algorithm = _import("ray.tune.search.optuna").OptunaSearch(seed=study.seeds[0])
    if search.scheduler == "asha":
        schedulers = _import("ray.tune.schedulers")
        # robustpo's own iteration count, which a resumed trial continues (Tune's
        # training_iteration would restart at 1).
        scheduler = schedulers.ASHAScheduler(
            time_attr="iteration", grace_period=search.grace_period,
            reduction_factor=search.reduction_factor, max_t=10**9)
    return tune.TuneConfig(metric=search.metric, mode=search.mode, num_samples=search.samples,
                           search_alg=algorithm, scheduler=scheduler,
                           max_concurrent_trials=max_concurrent,
                           trial_dirname_creator=_dirname(study))


def _dirname(study: Study) -> Any:
    def name(trial: Any) -> str:
        return f"{_trial_of(study, trial.config).name}-{trial.trial_id}"
    return name


@dataclass
class SweepResult:
    """What :func:`run_study` returns.

    Attributes:
        run_dirs: run directories of the trials that finished (trained and, with an attack
            section, attacked), sorted; trials a scheduler stopped early are not among them.
        best: a tuning study's best finished trial's run directory, metric value and
            searched config values; None for a grid study.
    """

    run_dirs: list[Path]
    best: tuple[Path, float, dict[str, Any]] | None = None


def run_study(study: Study, *, address: str | None = None, max_concurrent: int | None = None,
              resume: bool = False, verbose: int = 1) -> SweepResult:
    """Run every trial of ``study`` that has not finished.

    Args:
        study: from :func:`~robustpo.sweep.study.load_study`.
        address: an existing Ray cluster (``auto``, ``HOST:6379``); None starts a local Ray
            with this machine's cores. On a cluster, ``study.out`` must be one shared
            filesystem path on every node (docs/sweeps.md).
        max_concurrent: at most this many trials at once (default: as many as the cluster's
            CPUs allow at ``cpus_per_trial`` each).
        resume: continue a study whose driver was interrupted: finished trials are kept,
            the others continue from their checkpoints.
        verbose: Tune's console verbosity (0 silent, 1 status table, 2 every result).

    Raises:
        SweepDependencyError: Ray Tune or Optuna are not installed.
        ConfigError: the study was started before and ``resume`` is False, or was never
            started and ``resume`` is True.
    """
    experiment = study.out / EXPERIMENT
    if resume and not study.out.exists():
        raise ConfigError(f"Study {study.name!r} was never started ({study.out} does not exist): "
                          f"run it without --resume.")
    if experiment.exists() and not resume:
        raise ConfigError(f"Study {study.name!r} was started before in {study.out}: continue "
                          f"it with `robustpo sweep {study.source} --resume`, or give the study "
                          f"another out directory.")
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {max_concurrent}.")
    ray, tune = _import("ray"), _import("ray.tune")
    # Tune checks that every report holds the tuned metric; natural and worst_case come only
    # with a trial's last report.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # A loaded 2-core machine starts Python workers slowly; Ray's 60 s default gives up.
    os.environ.setdefault("RAY_worker_register_timeout_seconds", "600")
    study.out.mkdir(parents=True, exist_ok=True)
    ray.init(address=address, include_dashboard=False, ignore_reinit_error=True,
             logging_level="WARNING", log_to_driver=verbose > 0)
    try:
        trainable = tune.with_resources(tune.with_parameters(robustpo_trial, study=study),
                                        {"cpu": study.cpus_per_trial})
        if resume and tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable, param_space=_space(study, tune),
                tune_config=_tune_config(study, tune, max_concurrent),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=str(study.out), verbose=verbose,
                    failure_config=tune.FailureConfig(max_failures=study.max_failures)))
        results = tuner.fit()
    finally:
        ray.shutdown()
    finished = {}
    for result in results:
        config = result.config or {}
        if result.error is None and "algo" in config:
            run_dir = study.run_dir(_trial_of(study, config))
            if _finished(study, run_dir):
                finished[run_dir] = (result.metrics or {}, config.get("search", {}))
    best = None
    if study.search is not None:
        metric, sign = study.search.metric, 1 if study.search.mode == "max" else -1
        scored = [(d, m[metric], c) for d, (m, c) in finished.items()
                  if isinstance(m.get(metric), float | int) and m[metric] == m[metric]]
        best = max(scored, key=lambda x: sign * x[1], default=None)
    return SweepResult(sorted(finished), best)


def _finished(study: Study, run_dir: Path) -> bool:
    from ..results.suite import RESULT_FILES

    if not (run_dir / "agent.json").is_file():
        return False  # stopped early by the scheduler, or failed
    return study.attack is None or (run_dir / RESULT_FILES[study.attack.target]).is_file()
