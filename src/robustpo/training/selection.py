"""The run's agent when ``run.keep_best`` is on: the best-evaluated or the last policy.

TD3's deterministic policy swings between evaluations, so the field deploys one of two
policies: the best evaluation's (the TD3 paper's Table 1 reports it; Stable-Baselines3's
``EvalCallback`` keeps it) or the last. The best is chosen on the same ``eval_episodes`` start
states at every evaluation, so over a hundred evaluations it is partly chosen for those states:
an OA-TD3 Hopper-v5 policy evaluated at 3,237 +- 10 on its 10 selecting episodes returned
2,976 +- 671 on 50 fresh ones, while the run's last policy returned 3,182 +- 13.
:func:`select_final_policy` therefore measures both candidates again on fresh episodes and
keeps the higher mean (nominal return only, the same rule for every method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..io.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint

BEST_DIR, LAST_DIR = "best", "last"  # run.keep_best: the best-evaluated and the last policy
# Selection episodes start here: disjoint from evaluation and attack episodes (seeds 0
# onwards), the training evaluations (seed + 100 onwards) and attack screening (100,000 on).
SELECT_SEED = 200_000


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select_final_policy`: each candidate's mean raw return and its
    bootstrap 95% CI over ``episodes`` episodes from seed :data:`SELECT_SEED`, and which one
    is now the run's agent (``"best"`` or ``"last"``)."""

    episodes: int
    best_return: float  # NaN: the candidate could not be loaded (e.g. non-finite weights)
    best_ci: tuple[float, float]
    last_return: float
    last_ci: tuple[float, float]
    kept: str

    def record(self) -> dict[str, float | int | str | None]:
        """The entry written to the agent's ``agent.json`` under ``selection``."""
        return dict(episodes=self.episodes, seed=SELECT_SEED,
                    best_return=_finite_or_none(self.best_return),
                    last_return=_finite_or_none(self.last_return), kept=self.kept)


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a candidate that could not be measured is recorded as null."""
    return value if math.isfinite(value) else None


def select_final_policy(run_dir: str | Path, episodes: int) -> Selection:
    """Evaluate ``RUN/best/`` and ``RUN/last/`` (deterministic policy, no attack) on
    ``episodes`` fresh episodes and write the one with the higher mean (the best-evaluated on a
    tie) as the run's agent, ``RUN/agent.{safetensors,json}``, its ``agent.json`` recording the
    training evaluation that chose ``best`` (if kept) and the selection.

    An exported agent directory (the best policy at its root, the last in ``last/``, no
    ``best/``) gets a ``best/`` copy of its root agent first, so the choice can be made again.

    Raises:
        CheckpointError: ``run_dir`` is not a directory, lacks ``last/`` or a best-evaluated
            policy, or neither candidate can be loaded (corrupt files, non-finite weights); a
            candidate that cannot be loaded, or returns NaN, is never kept.
        ConfigError: ``episodes`` < 1.
    """
    from ..agents.agent import AGENT_FILE, load_agent
    from ..attacks.random_noise import NoAttack
    from ..evaluation.episodes import check_eval_args, run_episodes

    check_eval_args(episodes, 0.0)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a directory: give a run directory trained with "
                              f"run.keep_best, or an exported agent directory.")
    best_dir, last_dir = run_dir / BEST_DIR, run_dir / LAST_DIR
    if not (last_dir / "agent.json").is_file():
        raise CheckpointError(f"{last_dir} holds no agent: only a run trained with "
                              "run.keep_best has a best-evaluated and a last policy to choose "
                              "from.")
    if not (best_dir / "agent.json").is_file():
        root = run_dir / "agent.json"
        if not root.is_file() or "evaluation" not in load_checkpoint(root)[1]:
            raise CheckpointError(f"{run_dir} holds no best-evaluated policy (best/ or an "
                                  "agent.json recording its evaluation).")
        best_dir.mkdir(exist_ok=True)
        copy_agent(run_dir, best_dir)
    stats, unusable = {}, {}
    for name, directory in ((BEST_DIR, best_dir), (LAST_DIR, last_dir)):
        try:
            agent = load_agent(directory)
        except CheckpointError as exc:  # e.g. weights gone NaN: the other candidate may do
            unusable[name] = exc
            continue
        stats[name] = run_episodes(agent, NoAttack(), 0.0, episodes, seed=SELECT_SEED).stats
    if not stats:
        raise unusable[BEST_DIR]
    # A candidate that cannot be loaded, or whose mean is NaN, never wins.
    score = {name: (s.mean if math.isfinite(s.mean) else -math.inf) for name, s in stats.items()}
    kept = max((BEST_DIR, LAST_DIR), key=lambda name: score.get(name, -math.inf))
    nan_stats = (math.nan, (math.nan, math.nan))
    best = (stats[BEST_DIR].mean, stats[BEST_DIR].ci95) if BEST_DIR in stats else nan_stats
    last = (stats[LAST_DIR].mean, stats[LAST_DIR].ci95) if LAST_DIR in stats else nan_stats
    selection = Selection(episodes, *best, *last, kept)
    chosen = (best_dir if kept == BEST_DIR else last_dir) / f"{AGENT_FILE}.json"
    tensors, meta = load_checkpoint(chosen)
    meta["evaluation"] = dict(meta.get("evaluation", {}), selection=selection.record())
    save_checkpoint(run_dir / AGENT_FILE, tensors, meta)
    return selection


def copy_agent(src: Path, dst: Path) -> None:
    """Copy ``src/agent.{safetensors,json}`` to ``dst``, each file written atomically, the
    weights first: the JSON, which records their SHA-256, is what makes the pair valid."""
    for name in ("agent.safetensors", "agent.json"):
        atomic_write_bytes(dst / name, (src / name).read_bytes())
