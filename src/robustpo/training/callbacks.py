"""Training callbacks: what happens around each iteration, in the style of Stable-Baselines3's
callbacks. The driver (:mod:`robustpo.training.driver`) calls, in list order,
``on_train_start`` once, ``on_iteration`` after every iteration with its metrics, and
``on_train_end`` once (also after an error, to close files).

The built-in ones resume a run, write checkpoints, the metrics CSV and TensorBoard logs, show
the progress bar and stop on NaN; users pass their own (``robustpo.train(...,
callbacks=[...])``), for example to report to a sweep scheduler or stop early.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config.sections import RunConfig
from ..errors import CheckpointError, NonFiniteError
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..io.rundir import MetricsCSV, checkpoint_base, checkpoint_paths, prune_checkpoints
from ..learners.base import Learner
from .selection import BEST_DIR, LAST_DIR, copy_agent, select_final_policy

if TYPE_CHECKING:
    from ..agents.agent import Agent

RUN_METRICS = ["iteration", "global_step", "time_s", "steps_per_s", "episode_return",
               "episode_length"]
# Columns of the evaluations (run.eval_every > 0), empty in the iterations without one.
EVAL_METRICS = ["eval_return", "eval_return_std", "eval_length"]
EVAL_SEED_OFFSET = 100  # evaluation episodes start at seed + 100, as in TD3's author code


@dataclass
class TrainingRun:
    """What callbacks see of the run.

    Attributes:
        learner: the learner being trained (its ``iteration``, ``agent``, ``cfg``...).
        run_dir: the run directory.
        resuming: whether this run continues from a checkpoint.
        start_iteration: the iteration training (re)starts from.
        last_checkpoint: the newest checkpoint's JSON path, None before the first.
        stop: set to True by a callback to end training after this iteration.
        extra: free room for callbacks to share state.
    """

    learner: Learner
    run_dir: Path
    resuming: bool = False
    start_iteration: int = 0
    last_checkpoint: str | None = None
    stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_fields(self) -> list[str]:
        """Column names of an iteration's metrics row."""
        evals = EVAL_METRICS if self.learner.cfg.run.eval_every else []
        return RUN_METRICS + evals + self.learner.metric_names


class Callback:
    """Base class; override the hooks you need."""

    def on_train_start(self, run: TrainingRun) -> None:
        """Before the first iteration (after a resume has restored the learner)."""

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        """After each iteration. ``metrics`` holds ``iteration``, ``global_step``, ``time_s``,
        ``steps_per_s``, ``episode_return``, ``episode_length`` (empty strings before the
        first finished episode) and the learner's ``metric_names``."""

    def on_train_end(self, run: TrainingRun) -> None:
        """After the last iteration, or after an error."""


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first; none for a run interrupted before its first.

    Raises:
        CheckpointError: ``run_dir`` holds a trained agent but no checkpoint (an exported or
            zoo agent), which starting over would overwrite.
    """
    ckpts = checkpoint_paths(run_dir)
    if not ckpts and (run_dir / "agent.safetensors").exists():
        raise CheckpointError(
            f"{run_dir} holds a trained agent but no checkpoint to resume from (exported and "
            f"zoo agents keep none); resuming would train it over from the start and overwrite "
            f"its agent and metrics. Train a new run with `robustpo train ... --out NEW_DIR` "
            f"instead.")
    return ckpts


class Resume(Callback):
    """Restore the learner from the run's newest checkpoint (``--resume``).

    A run interrupted before its first checkpoint starts over.

    Raises (on_train_start):
        CheckpointError: the checkpoint's config differs from the run's (in more than
            ``total_steps`` for a learner without a ``budget_schedule``), or it is corrupt; or
            the directory holds a trained agent but no checkpoint (an exported or zoo agent),
            which starting over would overwrite.
    """

    def on_train_start(self, run: TrainingRun) -> None:
        from .presets import config_from_dict

        ckpts = resumable_checkpoints(run.run_dir)
        if not ckpts:
            return
        tensors, meta = load_checkpoint(ckpts[-1])
        if "config" not in meta:
            raise CheckpointError(
                f"Checkpoint {ckpts[-1]} records no config (key 'config'), so it was not "
                f"written by `robustpo train`. Move it out of {ckpts[-1].parent} to resume from "
                f"the checkpoint before it.")
        saved = config_from_dict(meta["config"], str(ckpts[-1]))
        if run.learner.budget_schedule is None:  # the budget may change (driver.train)
            saved = saved.with_total_steps(run.learner.cfg.total_steps)
        if saved != run.learner.cfg:
            new = _flat(run.learner.cfg.to_dict())
            differing = sorted(k for k, v in _flat(saved.to_dict()).items() if new.get(k) != v)
            raise CheckpointError(
                f"Checkpoint {ckpts[-1]} was written with a config that differs from "
                f"{run.run_dir}/config.yaml in {', '.join(differing) or 'its values'}. A run "
                f"continues with the config it started with: restore config.yaml, or train a "
                f"new run with --set to change a value.")
        run.learner.restore(tensors, meta, str(ckpts[-1]))
        run.start_iteration = run.learner.iteration
        run.last_checkpoint = str(ckpts[-1])


class Checkpoints(Callback):
    """Save the learner's whole state every ``every`` iterations and at the end, keeping the
    newest ``keep`` (safetensors + JSON, written atomically)."""

    def __init__(self, every: int, keep: int) -> None:
        self.every, self.keep = every, keep

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        learner = run.learner
        if learner.iteration % self.every and learner.iteration != learner.total_iterations:
            return
        run.last_checkpoint = str(save_checkpoint(
            checkpoint_base(run.run_dir, learner.iteration), learner.state_tensors(),
            learner.state_meta()))
        prune_checkpoints(run.run_dir, self.keep)


class CSVLog(Callback):
    """``RUN/metrics.csv``, one row per iteration; a resumed run drops rows past its
    checkpoint."""

    def __init__(self) -> None:
        self.csv: MetricsCSV | None = None

    def on_train_start(self, run: TrainingRun) -> None:
        self.csv = MetricsCSV(run.run_dir / "metrics.csv", run.metric_fields,
                              run.start_iteration if run.resuming else None)

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        assert self.csv is not None
        self.csv.write(metrics)

    def on_train_end(self, run: TrainingRun) -> None:
        if self.csv is not None:
            self.csv.close()


class TensorBoardLog(Callback):
    """TensorBoard scalars ``train/<metric>`` in ``RUN/tb`` (``tensorboard --logdir RUN/tb``)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def on_train_start(self, run: TrainingRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run.run_dir / "tb"),
                                    purge_step=run.start_iteration + 1 if run.resuming else None)

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if key != "iteration" and value != "":
                self.writer.add_scalar(f"train/{key}", value, metrics["iteration"])

    def on_train_end(self, run: TrainingRun) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar(Callback):
    """A rich progress bar: steps, steps/s, recent return, elapsed and remaining time."""

    def __init__(self) -> None:
        self.bar: Progress | None = None

    def on_train_start(self, run: TrainingRun) -> None:
        cfg, learner = run.learner.cfg, run.learner
        self.bar = Progress(
            TextColumn(f"[bold]{cfg.algo} {cfg.env} s{cfg.seed}"), BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            TextColumn("{task.fields[fps]:,.0f} steps/s"), TextColumn("return {task.fields[ret]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("train", total=learner.total_steps,
                                      completed=learner.global_step, fps=0.0, ret="-")

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        assert self.bar is not None
        ret = metrics["episode_return"]
        self.bar.update(self.task, completed=metrics["global_step"], fps=metrics["steps_per_s"],
                        ret=f"{ret:.0f}" if ret != "" else "-")

    def on_train_end(self, run: TrainingRun) -> None:
        if self.bar is not None:
            self.bar.stop()


class Evaluations(Callback):
    """Evaluate the deterministic policy on ``episodes`` fresh episodes (seeds ``seed + 100``
    onwards, the same at every evaluation) whenever the run crosses a multiple of ``every``
    environment steps, and after the last iteration: the learning curve the TD3 paper plots
    (Fujimoto et al. 2018: every 5,000 steps, 10 episodes). Adds ``eval_return`` (mean raw
    return), ``eval_return_std`` and ``eval_length`` to that iteration's metrics, so
    metrics.csv and TensorBoard carry them. Training is unaffected: the episodes run on their
    own simulators and draw from no generator of the learner.

    With ``keep_best``, each evaluation whose mean beats every earlier one saves the policy to
    ``RUN/best/`` (its ``agent.json`` records the evaluation), and :func:`save_final_agent`
    makes it the run's agent. A resumed run continues from the best saved before the
    interruption; on MuJoCo tasks the resumed run replays the same evaluations, so the choice
    is the uninterrupted run's.
    """

    def __init__(self, every: int, episodes: int, keep_best: bool = False) -> None:
        self.every, self.episodes, self.keep_best = every, episodes, keep_best
        self.last_step = 0
        self.best = -math.inf

    def on_train_start(self, run: TrainingRun) -> None:
        self.last_step = run.learner.global_step
        if self.keep_best and run.resuming:
            self.best = best_evaluation(run.run_dir)

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        from ..attacks.random_noise import NoAttack
        from ..evaluation.episodes import run_episodes

        learner, step = run.learner, metrics["global_step"]
        due = step // self.every > self.last_step // self.every
        self.last_step = step
        if not due and learner.iteration != learner.total_iterations:
            return
        result = run_episodes(learner.agent, NoAttack(), 0.0, self.episodes,
                              seed=learner.cfg.seed + EVAL_SEED_OFFSET)
        metrics.update(eval_return=round(result.stats.mean, 2),
                       eval_return_std=round(result.stats.std, 2),
                       eval_length=round(float(np.mean(result.lengths)), 1))
        if self.keep_best and result.stats.mean > self.best:
            self.best = result.stats.mean
            learner.agent.save(run.run_dir / BEST_DIR, evaluation=dict(
                iteration=learner.iteration, global_step=step, eval_return=result.stats.mean,
                eval_return_std=result.stats.std, episodes=self.episodes))


def best_evaluation(run_dir: Path) -> float:
    """The evaluation mean of the policy in ``run_dir/best/``, -inf if there is none (or its
    files are torn: the next evaluation then replaces it)."""
    try:
        return float(load_checkpoint(run_dir / BEST_DIR / "agent.json")[1]["evaluation"]
                     ["eval_return"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return -math.inf


def save_final_agent(run_dir: Path, agent: Agent, run_cfg: RunConfig) -> None:
    """Write the run's agent, ``RUN/agent.{safetensors,json}``: the last policy, or with
    ``run.keep_best`` the best-evaluated policy of ``RUN/best/`` (the TD3 paper reports the
    best evaluation of a run, and Stable-Baselines3's EvalCallback keeps that model), the last
    policy then going to ``RUN/last/``; with ``run.select_episodes`` as well, whichever of the
    two :func:`~robustpo.training.selection.select_final_policy` keeps."""
    best = run_dir / BEST_DIR
    if not run_cfg.keep_best or not (best / "agent.json").is_file():
        agent.save(run_dir)
        return
    agent.save(run_dir / LAST_DIR)
    if run_cfg.select_episodes:
        select_final_policy(run_dir, run_cfg.select_episodes)
    else:
        copy_agent(best, run_dir)


class NonFiniteStop(Callback):
    """Stop with :class:`NonFiniteError` when a metric is NaN or infinite (the learner checks
    its losses before each optimiser step; this catches everything else). The last good
    checkpoint is kept and named in the message."""

    def on_iteration(self, run: TrainingRun, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise NonFiniteError(f"the metric {key!r}", run.learner.iteration,
                                     run.last_checkpoint)


def default_callbacks(run_cfg: RunConfig, resuming: bool, progress: bool) -> list[Callback]:
    """The driver's callbacks: resume (if resuming), the NaN stop, evaluations (if
    ``run_cfg.eval_every``), CSV, TensorBoard, checkpoints and the progress bar (if
    ``progress``)."""
    callbacks: list[Callback] = [Resume()] if resuming else []
    # The NaN stop comes before the checkpoint, so that a non-finite iteration is never saved;
    # evaluations come before the logs, which write their columns; the logs come before the
    # checkpoint, so that a run killed in between has the checkpoint's row (a resume drops
    # rows past its checkpoint, never one before it).
    callbacks.append(NonFiniteStop())
    if run_cfg.eval_every:
        callbacks.append(Evaluations(run_cfg.eval_every, run_cfg.eval_episodes,
                                     run_cfg.keep_best))
    callbacks += [CSVLog(), TensorBoardLog(),
                  Checkpoints(run_cfg.checkpoint_every, run_cfg.keep_checkpoints)]
    if progress:
        callbacks.append(ProgressBar())
    return callbacks


def iteration_metrics(learner: Learner, stats: dict[str, float], t0: float, steps0: int
                      ) -> dict[str, Any]:
    """The row handed to ``on_iteration``: run counters, timing, episodes, learner metrics."""
    elapsed = time.perf_counter() - t0
    return dict(
        stats, iteration=learner.iteration, global_step=learner.global_step,
        time_s=round(elapsed, 2),
        steps_per_s=round((learner.global_step - steps0) / max(elapsed, 1e-9), 1),
        **learner.episodes.summary(),
    )


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"ppo": {"policy_lr": x}}`` -> ``{"ppo.policy_lr": x}``, as ``--set`` names keys."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
