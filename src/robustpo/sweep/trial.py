"""One sweep trial: train (or resume) a run directory, then attack it. No Ray here: the Tune
trainable (:mod:`robustpo.sweep.tuner`) hands in its ``report`` function, tests a list's
``append``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..attacks.base import ACTION_EPS, OBSERVATION
from ..errors import CheckpointError, ConfigError
from ..io.checkpoint import atomic_write_text
from ..io.rundir import read_run_config
from ..results.suite import RESULT_FILES, run_suite
from ..training.callbacks import Callback, TrainingRun
from ..training.driver import train
from ..training.presets import config_from_dict, resolve_config
from .study import Study, TrialSpec

Report = Callable[[dict[str, Any]], None]


class ReportMetrics(Callback):
    """Hand every iteration's metrics to ``report`` (a sweep scheduler), but the last
    iteration's, which :func:`run_trial` reports once the agent is saved and attacked: a
    scheduler may stop a trial at any report, and stopping it there must lose nothing. Values
    not yet known (the return before the first finished episode) are reported as NaN, so that
    every report holds the same keys."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.last: dict[str, Any] = {}

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        self.last = {k: math.nan if v == "" else v for k, v in metrics.items()}
        if run.learner.iteration < run.learner.total_iterations:
            self.report(self.last)


def run_trial(study: Study, trial: TrialSpec, report: Report) -> dict[str, Any]:
    """Train ``trial`` into ``study.run_dir(trial)``, continuing it from its newest checkpoint
    if the directory already holds it, then run the study's attack suite (skipped when its
    result file exists). Reports each iteration's metrics; the last report, also returned,
    comes after the agent is saved and attacked and adds ``natural`` and ``worst_case`` (mean
    returns over the attack's episodes) to the last iteration's metrics (which a trial
    resumed after its training ended no longer has).

    Raises:
        CheckpointError: the run directory holds a run of another config (the study file was
            changed after the trial started).
        RobustpoError: from training or the attacks.
    """
    run_dir = study.run_dir(trial)
    reporter = ReportMetrics(report)
    cfg = resolve_config(trial.algo, trial.env, preset=study.preset, overrides=trial.overrides,
                         seed=trial.seed, total_steps=study.steps)
    if (run_dir / "config.yaml").is_file():
        saved = config_from_dict(read_run_config(run_dir), f"{run_dir}/config.yaml")
        if saved != cfg:
            raise CheckpointError(
                f"{run_dir} holds a run of another config than trial {trial.name} of study "
                f"{study.source}: the study file changed after the trial started. Restore the "
                f"study file, or give the study another out directory.")
        result = train(resume=run_dir, progress=False, callbacks=[reporter])
    else:
        result = train(trial.algo, trial.env, steps=study.steps, seed=trial.seed, out=run_dir,
                       preset=study.preset, overrides=trial.overrides, progress=False,
                       callbacks=[reporter])
    final = {**reporter.last, "iteration": result.iterations,
             "global_step": result.global_step}
    if study.attack is not None:
        suite = attack_trial(study, result.agent, run_dir)
        final.update(natural=suite["natural"]["mean"], worst_case=suite["worst"]["mean"])
    report(final)
    return final


def attack_trial(study: Study, agent: Any, run_dir: Path) -> dict[str, Any]:
    """The study's attack suite on ``agent``, written to the run directory's result file as
    ``robustpo attack`` writes it (and returned in that JSON form); read back instead when
    that file exists.

    Raises:
        ConfigError: the agent records no attack eps and the study gives none.
    """
    spec = study.attack
    assert spec is not None
    path = run_dir / RESULT_FILES[spec.target]
    if path.is_file():
        return json.loads(path.read_text())
    eps = spec.eps
    if eps is None:
        eps = agent.attack_eps if spec.target == OBSERVATION else ACTION_EPS
    if eps is None:
        raise ConfigError(f"{run_dir} records no attack eps; set attack.eps in {study.source}.")
    suite = run_suite(agent, list(spec.attacks), eps, spec.episodes, spec.seed,
                      cache_dir=run_dir / "attacks", protocol=spec.protocol, target=spec.target)
    result = suite.to_json()
    atomic_write_text(path, json.dumps(result, indent=1))
    return result
