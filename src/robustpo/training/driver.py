"""The training driver: config, run directory, any learner, callbacks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adversaries.base import method_class
from ..agents.agent import Agent, load_agent
from ..config.sections import TrainConfig
from ..errors import CheckpointError, ConfigError, NonFiniteError
from ..io.checkpoint import read_checkpoint_meta
from ..io.locks import RUN_LOCK_FILE, exclusive
from ..io.rundir import read_run_config, record_budget_change, write_run_metadata
from ..learners import LEARNERS, make_learner
from ..learners.base import Learner
from .callbacks import (
    Callback,
    TrainingRun,
    default_callbacks,
    iteration_metrics,
    resumable_checkpoints,
    save_final_agent,
)
from .presets import config_from_dict, resolve_config


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the trained agent (the one saved in
    ``run_dir``: with ``run.keep_best`` the best-evaluated policy, loaded back), and how far it
    got."""

    run_dir: Path
    agent: Agent
    iterations: int
    global_step: int


def _default_out(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{cfg.algo}-{cfg.env}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    algo: str = "ppo",
    env: str = "Hopper-v5",
    *,
    steps: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    preset: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Train an agent and leave a run directory (see :mod:`robustpo.io.rundir`).

    Args:
        algo: training method (``robustpo list``).
        env: Gymnasium environment id.
        steps: environment steps (overrides the preset's ``ppo.total_steps``, or
            ``td3.total_steps`` for the TD3 family). With ``resume``: the run's new budget,
            at least the steps it has taken, for learners whose updates do not depend on it
            (the TD3 family; :attr:`Learner.budget_schedule`); the continued run equals one
            started with that budget, and ``meta.json`` records the change.
        seed: random seed; the same seed and config give the same parameters.
        out: run directory to create (default ``runs/<algo>-<env>-s<seed>-<time>``).
        preset: bundled preset name, YAML file or ``"defaults"`` (default: ``<algo>-<env>``,
            which must exist).
        overrides: config values applied last, e.g. ``{"policy_lr": 1e-4}``.
        resume: an existing run directory to continue from its newest checkpoint; its saved
            config is used and the other config arguments, ``steps`` excepted, must be left
            unset.
        progress: show a progress bar.
        callbacks: your own :class:`~robustpo.training.callbacks.Callback` objects, called
            after the built-in ones.

    Raises:
        UnknownNameError: unknown algorithm, environment or preset.
        ConfigError: bad config values, no preset for ``algo`` on ``env``, ``out`` is a
            file, or ``steps`` with ``resume`` for a PPO-family run (whose schedules follow
            the budget) or below the steps the run has taken.
        CheckpointError: ``resume`` is missing, corrupt or incompatible, or ``out`` already
            holds a run.
        NonFiniteError: a loss or environment output became NaN/inf; the last good checkpoint
            is kept.
        BusyError: another process is training in the same run directory (``RUN/.lock``).
    """
    if resume is not None:
        if any(v is not None for v in (seed, out, preset)) or overrides:
            raise CheckpointError(
                "--resume continues a run with the config it was started with; do not pass "
                "--seed, --out, --preset or --set together with it (--steps changes a TD3-family "
                "run's budget)."
            )
        run_dir = Path(resume)
        cfg = config_from_dict(read_run_config(run_dir), f"{run_dir}/config.yaml")
    else:
        cfg = resolve_config(
            algo, env, preset=preset, overrides=overrides, seed=seed, total_steps=steps
        )
        run_dir = Path(out) if out is not None else _default_out(cfg)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is not a directory (a file of that name "
                              f"exists); choose another --out.")
    # Held from before the checks below, so that two processes started on one --out cannot
    # both find it empty.
    with exclusive(run_dir / RUN_LOCK_FILE, f"run directory {run_dir}"):
        if resume is None:
            _check_out_is_free(run_dir)
        elif steps is not None:
            cfg = _change_budget(run_dir, cfg, steps)
        learner = make_learner(cfg, method_class(cfg.algo).learner)
        try:
            if resume is None:
                write_run_metadata(run_dir, cfg.to_dict())
            return run_learner(learner, run_dir, resuming=resume is not None,
                               progress=progress, callbacks=callbacks)
        finally:
            learner.close()


def _change_budget(run_dir: Path, cfg: TrainConfig, steps: int) -> TrainConfig:
    """``cfg`` with ``total_steps = steps``, written to ``run_dir`` (``config.yaml`` and a
    ``budget_changes`` entry in ``meta.json``) after checking that the learner allows it and
    that the run has not taken more steps.

    Raises:
        ConfigError: the learner's updates follow the budget, or ``steps`` is below the steps
            of the newest checkpoint or one iteration.
        CheckpointError: ``run_dir`` holds an agent but no checkpoint (nothing is written).
    """
    learner_class = LEARNERS[method_class(cfg.algo).learner]
    if learner_class.budget_schedule is not None:
        raise ConfigError(
            f"--steps with --resume changes a run's budget, which {cfg.algo} cannot take: its "
            f"learner {learner_class.budget_schedule}, so the steps already taken were "
            f"scheduled for {cfg.total_steps:,}. Train a new run with --steps {steps}.")
    new = cfg.with_total_steps(steps)
    ckpts = resumable_checkpoints(run_dir)
    taken = int(read_checkpoint_meta(ckpts[-1]).get("global_step", 0)) if ckpts else 0
    if new.total_steps < taken:
        raise ConfigError(
            f"{run_dir} has taken {taken:,} steps already; --steps must be at least that "
            f"(got {steps:,}).")
    if new.total_steps != cfg.total_steps:
        record_budget_change(run_dir, new.to_dict(), cfg.total_steps, new.total_steps)
    return new


def _check_out_is_free(run_dir: Path) -> None:
    """Raise CheckpointError if ``run_dir`` already holds a run, an agent or its files."""
    if (run_dir / "config.yaml").exists():
        raise CheckpointError(
            f"{run_dir} already holds a run. Continue it with `robustpo train --resume "
            f"{run_dir}`, or choose another --out."
        )
    held = [name for name in ("agent.json", "agent.safetensors", "metrics.csv",
                              "checkpoints") if (run_dir / name).exists()]
    if held:
        raise CheckpointError(
            f"{run_dir} already holds {', '.join(held)} (an agent or a run without its "
            f"config.yaml); training there would replace them. Choose another --out."
        )


def run_learner(
    learner: Learner, run_dir: Path, *, resuming: bool = False, progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Drive ``learner`` to its last iteration with the built-in callbacks and ``callbacks``;
    save the final agent in ``run_dir``.

    Raises:
        NonFiniteError: from the learner or a callback, naming the last good checkpoint.
    """
    cfg = learner.cfg
    all_callbacks = default_callbacks(cfg.run, resuming, progress) + list(callbacks or [])
    run = TrainingRun(learner, run_dir, resuming)
    try:
        for callback in all_callbacks:
            callback.on_train_start(run)
        t0, steps0 = time.perf_counter(), learner.global_step
        while learner.iteration < learner.total_iterations and not run.stop:
            try:
                stats = learner.step()
            except NonFiniteError as exc:
                raise NonFiniteError(exc.quantity, exc.iteration, run.last_checkpoint) from None
            metrics = iteration_metrics(learner, stats, t0, steps0)
            for callback in all_callbacks:
                callback.on_iteration(run, metrics)
    finally:
        for callback in all_callbacks:
            callback.on_train_end(run)
    save_final_agent(run_dir, learner.agent, cfg.run)
    agent = load_agent(run_dir) if cfg.run.keep_best else learner.agent
    return TrainResult(run_dir, agent, learner.iteration, learner.global_step)
