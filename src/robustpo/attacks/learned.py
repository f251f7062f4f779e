"""Learned attacks: an adversary policy trained by robustpo's own PPO learner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from rich.progress import Progress

from ..agent import load_agent
from ..config import resolve_config
from ..envs import make_env
from ..errors import CheckpointError
from .base import ObservationAttack, register

if TYPE_CHECKING:
    from ..agent import Agent


class AdversaryEnv(gym.Wrapper):
    """The SA-RL adversary's MDP (Zhang et al., ICLR 2021, "Robust Reinforcement Learning on
    State Observations with Learned Optimal Adversary"; REFERENCE section 4).

    Its state is the victim's normalised observation s (float32, frozen normaliser); its action
    Delta is clipped to [-1, 1]^obs_dim (the hardtanh of the reference); the victim acts
    deterministically on s + eps * Delta, inside the eps-ball by construction; its reward is
    minus the task's reward. The task's simulator state stays savable (resume works).

    Args:
        victim: the fixed victim agent.
        eps: l_inf radius in normalised units.
    """

    def __init__(self, victim: Agent, eps: float) -> None:
        super().__init__(make_env(victim.env_id))
        self.victim, self.eps = victim, float(eps)
        dim = victim.obs_dim
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self._obs = np.zeros(dim, dtype=np.float32)

    def _view(self, raw: np.ndarray) -> np.ndarray:
        self._obs = self.victim.obs_normalizer.normalize(raw[None], update=False)[0]
        return self._obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        raw, info = self.env.reset(seed=seed, options=options)
        return self._view(raw), info

    def step(self, delta: np.ndarray):
        perturbed = self._obs + self.eps * np.clip(delta, -1.0, 1.0).astype(np.float32)
        action = self.victim.act_normalized(torch.from_numpy(perturbed[None]))[0]
        raw, reward, terminated, truncated, info = self.env.step(action)
        return self._view(raw), -float(reward), terminated, truncated, info


@register
class SARLAttack(ObservationAttack):
    """SA-RL optimal attack: a PPO adversary trained on :class:`AdversaryEnv` (reward -r).

    The adversary uses the PPO preset of the victim's task with ``steps`` environment steps
    (default 500,000; the reference scripts train longer and scan hyperparameters, keeping the
    lowest return). A trained adversary is saved in ``cache_dir / f"sarl-eps{eps}"`` when a
    cache directory is set (``robustpo attack`` uses ``RUN_DIR/attacks``) and reused there.
    """

    name = "sarl"
    description = "SA-RL learned optimal adversary (PPO on the adversary MDP, reward -r)"
    steps = 500_000

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.seed = seed
        self.adversary: Agent | None = None

    def prepare(self, agent: Agent, eps: float) -> None:
        from ..ppo import PPOLearner

        target = self.cache_dir / f"sarl-eps{eps:g}" if self.cache_dir else None
        if target is not None and (target / "agent.json").is_file():
            try:
                self.adversary = load_agent(target)
                return
            except CheckpointError:
                pass  # a corrupt cache is retrained below
        cfg = resolve_config("ppo", agent.env_id, seed=self.seed, total_steps=self.steps)
        learner = PPOLearner(cfg, env_fn=lambda: AdversaryEnv(agent, eps))
        try:
            with Progress(transient=True) as bar:
                task = bar.add_task(f"training SA-RL adversary, eps {eps:g}", total=cfg.iterations)
                while learner.iteration < cfg.iterations:
                    learner.step()
                    bar.update(task, completed=learner.iteration)
        finally:
            learner.close()
        self.adversary = learner.agent
        self.adversary.obs_normalizer.frozen = True
        if target is not None:
            self.adversary.save(target)

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        if self.adversary is None:
            raise RuntimeError("SARLAttack.perturb called before prepare()")
        view = self.adversary.normalize(obs.numpy())
        delta = torch.from_numpy(self.adversary.act_normalized(view))
        return obs + eps * delta.clamp(-1.0, 1.0)
