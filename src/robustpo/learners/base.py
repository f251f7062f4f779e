"""The learner interface: what the training driver needs from an algorithm.

A learner owns the complete training state (agent, optimisers, running statistics, random
generators, environments) and advances it one *iteration* at a time (:meth:`Learner.step`).
For PPO an iteration is one rollout and its epochs of minibatches; for TD3 a fixed number of
environment steps, each followed by its gradient step, the replay buffer part of its state.
The driver (:mod:`robustpo.training.driver`) only loops, checkpoints through
:meth:`Learner.state_tensors` / :meth:`Learner.state_meta` / :meth:`Learner.restore`, and
hands each iteration's metrics to the callbacks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from ..agents.agent import Agent
from ..config.sections import TrainConfig
from .state import restore_simulators, simulator_state


class EpisodeTracker:
    """Undiscounted returns and lengths of the episodes finished in the vector environment:
    running sums per copy, and the last ``window`` finished episodes.

    Args:
        num_envs: vector environment copies; window: finished episodes kept.
    """

    def __init__(self, num_envs: int, window: int = 20) -> None:
        self.episode_return = np.zeros(num_envs)
        self.episode_length = np.zeros(num_envs, dtype=np.int64)
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)

    def track(self, reward: np.ndarray, ended: np.ndarray) -> None:
        """Add one vector step of raw rewards ``(num_envs,)``; ``ended`` closes episodes."""
        self.episode_return += reward
        self.episode_length += 1
        for i in np.flatnonzero(ended):
            self.recent_returns.append(float(self.episode_return[i]))
            self.recent_lengths.append(int(self.episode_length[i]))
        self.episode_return[ended] = 0.0
        self.episode_length[ended] = 0

    def summary(self) -> dict[str, float | str]:
        """Mean return and length of the recent episodes (empty strings before the first)."""
        n = len(self.recent_returns)
        if not n:
            return {"episode_return": "", "episode_length": ""}
        return {"episode_return": sum(self.recent_returns) / n,
                "episode_length": sum(self.recent_lengths) / n}


def method_generator(seed: int) -> torch.Generator:
    """The training method's own random stream (a training adversary's random starts and
    noise, a learned adversary's initialisation), derived from the run seed but separate from
    the learner's, so that a method that reduces to its base algorithm (eps = 0, alpha = 0)
    consumes the learner's stream exactly as the base algorithm does."""
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))


class Learner(ABC):
    """Base class of the learners (module docstring).

    Attributes:
        cfg: the run's validated config.
        agent: the agent being trained.
        iteration: iterations completed; global_step: environment steps taken.
        envs: the vector environment; raw_obs: its current observations.
        episodes: the finished episodes' statistics.
    """

    name: ClassVar[str]
    #: What in the learner's updates depends on ``total_steps`` (a schedule over the run), or
    #: None when nothing does: then a run can be continued to another budget
    #: (``robustpo train --resume RUN --steps N``) and equals a run started with that budget.
    budget_schedule: ClassVar[str | None] = None
    cfg: TrainConfig
    agent: Agent
    envs: gym.vector.VectorEnv
    raw_obs: np.ndarray
    iteration: int
    global_step: int
    episodes: EpisodeTracker

    @property
    @abstractmethod
    def total_iterations(self) -> int:
        """Iterations of the whole run."""

    @property
    @abstractmethod
    def total_steps(self) -> int:
        """Environment steps of the whole run."""

    @property
    @abstractmethod
    def metric_names(self) -> list[str]:
        """Names of the metrics :meth:`step` returns, in a stable order (CSV columns)."""

    @abstractmethod
    def step(self) -> dict[str, float]:
        """One iteration: gather experience and learn from it; advance ``iteration``; return
        the iteration's metrics (:attr:`metric_names`).

        Raises:
            NonFiniteError: a loss or an environment output became NaN or infinite (before a
                checkpoint could keep it).
        """

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the training state (for safetensors)."""

    @abstractmethod
    def state_meta(self) -> dict[str, Any]:
        """The JSON-serialisable rest of the training state; holds ``config`` and
        ``iteration``."""

    @abstractmethod
    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str
                ) -> None:
        """Load a state saved by :meth:`state_tensors` and :meth:`state_meta`, exactly.

        Raises:
            CheckpointError: the state does not fit this learner's config.
        """

    def close(self) -> None:
        """Release the environments."""
        self.envs.close()

    # ---- the state every learner saves alike ---------------------------------------------
    def run_state_tensors(self) -> dict[str, torch.Tensor]:
        """The agent, the current observations, the episodes' running sums and the
        simulators' states (the rest of :meth:`state_tensors` is the learner's own)."""
        out = self.agent.tensors()
        out["raw_obs"] = torch.from_numpy(np.asarray(self.raw_obs, dtype=np.float64).copy())
        out["episode_return"] = torch.from_numpy(self.episodes.episode_return.copy())
        out["episode_length"] = torch.from_numpy(self.episodes.episode_length.copy())
        out.update(simulator_state(self.envs)[0])
        return out

    def run_state_meta(self) -> dict[str, Any]:
        """Agent spec, config, counters, recent episodes, the simulators' step counters and
        generators (the rest of :meth:`state_meta` is the learner's own)."""
        return {
            "agent": self.agent.spec(),
            "config": self.cfg.to_dict(),
            "iteration": self.iteration,
            "global_step": self.global_step,
            "recent_returns": list(self.episodes.recent_returns),
            "recent_lengths": list(self.episodes.recent_lengths),
            "env_states": simulator_state(self.envs)[1],
        }

    def restore_run_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                          source: str) -> bool:
        """Load what :meth:`run_state_tensors` and :meth:`run_state_meta` saved; False when
        the task has no savable simulator state, so that fresh episodes start (their running
        sums are zeroed).

        Raises:
            CheckpointError: the agent's tensors do not fit. KeyError, ValueError: a missing
                or malformed entry.
        """
        self.agent.load_tensors(tensors, source)
        episodes = self.episodes
        episodes.episode_return = tensors["episode_return"].numpy().copy()
        episodes.episode_length = tensors["episode_length"].numpy().copy()
        episodes.recent_returns.extend(meta["recent_returns"])
        episodes.recent_lengths.extend(meta["recent_lengths"])
        self.iteration, self.global_step = int(meta["iteration"]), int(meta["global_step"])
        if not restore_simulators(self.envs, tensors, meta["env_states"]):
            episodes.episode_return[:] = 0.0
            episodes.episode_length[:] = 0
            return False
        self.raw_obs = tensors["raw_obs"].numpy().astype(self.raw_obs.dtype)
        # An MDP that keeps its own current observations (a learned adversary's,
        # robustpo.attacks.learned) is handed them back.
        if hasattr(self.envs, "set_observations"):
            self.envs.set_observations(self.raw_obs)
        return True
