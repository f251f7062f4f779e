"""The training driver: run directory, progress bar, logs, periodic checkpoints, resume."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .agent import Agent
from .checkpoint import load_checkpoint, save_checkpoint
from .config import PPOConfig, config_from_dict, resolve_config
from .errors import CheckpointError, NonFiniteError
from .ppo import PPOLearner
from .rundir import (
    MetricsCSV,
    checkpoint_base,
    checkpoint_paths,
    prune_checkpoints,
    read_run_config,
    write_run_metadata,
)

METRICS = [
    "iteration", "global_step", "time_s", "steps_per_s", "episode_return", "episode_length",
    "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "policy_lr",
    "policy_std",
]
ROBUST_METRICS = ["train_eps", "inner_objective", "perturbed_kl"]


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory and the trained agent."""

    run_dir: Path
    agent: Agent
    iterations: int
    global_step: int


def _default_out(cfg: PPOConfig) -> Path:
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
) -> TrainResult:
    """Train an agent and leave a run directory (see :mod:`robustpo.rundir`).

    Args:
        algo: algorithm name (``robustpo list``).
        env: Gymnasium environment id.
        steps: environment steps (overrides the preset's ``total_steps``).
        seed: random seed; the same seed and config give the same parameters.
        out: run directory to create (default ``runs/<algo>-<env>-s<seed>-<time>``).
        preset: bundled preset name or YAML file (default: ``<algo>-<env>`` if bundled).
        overrides: config values applied last, e.g. ``{"policy_lr": 1e-4}``.
        resume: an existing run directory to continue from its newest checkpoint; its saved
            config is used and the other config arguments must be left unset.
        progress: show a progress bar.

    Raises:
        UnknownNameError: unknown algorithm, environment or preset.
        ConfigError: bad config values.
        CheckpointError: ``resume`` is missing, corrupt or incompatible, or ``out`` already
            holds a run.
        NonFiniteError: a loss or environment output became NaN/inf; the last good checkpoint
            is kept.
    """
    if resume is not None:
        if any(v is not None for v in (steps, seed, out, preset)) or overrides:
            raise CheckpointError(
                "--resume continues a run with the config it was started with; do not pass "
                "--steps, --seed, --out, --preset or --set together with it."
            )
        run_dir = Path(resume)
        cfg = config_from_dict(read_run_config(run_dir), f"{run_dir}/config.yaml")
    else:
        cfg = resolve_config(
            algo, env, preset=preset, overrides=overrides, seed=seed, total_steps=steps
        )
        run_dir = Path(out) if out is not None else _default_out(cfg)
        if (run_dir / "config.yaml").exists():
            raise CheckpointError(
                f"{run_dir} already holds a run. Continue it with `robustpo train --resume "
                f"{run_dir}`, or choose another --out."
            )
    learner = PPOLearner(cfg)
    try:
        return _run(learner, run_dir, resume is not None, progress)
    finally:
        learner.close()


def _restore_latest(learner: PPOLearner, run_dir: Path) -> int | None:
    ckpts = checkpoint_paths(run_dir)
    if not ckpts:
        return None
    tensors, meta = load_checkpoint(ckpts[-1])
    saved_cfg = config_from_dict(meta["config"], str(ckpts[-1]))
    if saved_cfg != learner.cfg:
        raise CheckpointError(
            f"Checkpoint {ckpts[-1]} was written with a config that differs from "
            f"{run_dir}/config.yaml; the run directory is inconsistent. Restore config.yaml."
        )
    learner.restore(tensors, meta, str(ckpts[-1]))
    return learner.iteration


def _run(learner: PPOLearner, run_dir: Path, resuming: bool, progress: bool) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter

    cfg = learner.cfg
    start_iter = _restore_latest(learner, run_dir) if resuming else None
    if not resuming:
        write_run_metadata(run_dir, cfg.to_dict())
    start = start_iter or 0
    fields = METRICS if cfg.algo == "ppo" else METRICS + ROBUST_METRICS
    csv = MetricsCSV(run_dir / "metrics.csv", fields, start if resuming else None)
    tb = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if resuming else None)
    last_ckpt: str | None = str(checkpoint_paths(run_dir)[-1]) if start_iter else None
    columns = [
        TextColumn(f"[bold]{cfg.algo} {cfg.env} s{cfg.seed}"), BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("{task.fields[fps]:,.0f} steps/s"), TextColumn("return {task.fields[ret]}"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    ]
    t0, steps0 = time.perf_counter(), learner.global_step
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=cfg.iterations * cfg.batch_size,
                            completed=learner.global_step, fps=0.0, ret="-")
        while learner.iteration < cfg.iterations:
            try:
                stats = learner.step()
            except NonFiniteError as exc:
                tb.close()
                csv.close()
                raise NonFiniteError(exc.quantity, exc.iteration, last_ckpt) from None
            elapsed = time.perf_counter() - t0
            rets = list(learner.recent_returns)
            row = dict(
                stats, iteration=learner.iteration, global_step=learner.global_step,
                time_s=round(elapsed, 2),
                steps_per_s=round((learner.global_step - steps0) / max(elapsed, 1e-9), 1),
                episode_return=sum(rets) / len(rets) if rets else "",
                episode_length=(sum(learner.recent_lengths) / len(rets)) if rets else "",
            )
            csv.write(row)
            for key, value in row.items():
                if key != "iteration" and value != "":
                    tb.add_scalar(f"train/{key}", value, learner.iteration)
            if learner.iteration % cfg.checkpoint_every == 0 or learner.iteration == cfg.iterations:
                last_ckpt = str(save_checkpoint(
                    checkpoint_base(run_dir, learner.iteration), learner.state_tensors(),
                    learner.state_meta(),
                ))
                prune_checkpoints(run_dir, cfg.keep_checkpoints)
            bar.update(task, completed=learner.global_step, fps=row["steps_per_s"],
                       ret=f"{row['episode_return']:.0f}" if rets else "-")
    tb.close()
    csv.close()
    learner.agent.save(run_dir)
    return TrainResult(run_dir, learner.agent, learner.iteration, learner.global_step)
