"""Attacks on actions (REFERENCE section 5; the OA-PI paper's evaluation suite, arXiv
2507.03372): the environment executes ``clip(a + delta, low, high)`` with ``|delta_i| <= eps *
h_i``, ``h`` the action space's half-range.

- ``random``: delta uniform in the ball.
- ``biggest``: the largest perturbation, a vertex of the ball. The paper's definition is not
  available to us; we take the vertex that moves the *executed* action the most: each
  dimension by the full ``eps * h_i`` away from the bound it is nearer to (``-sign(a_i -
  centre_i)``, up when exactly at the centre), so the action-space clip never shortens it
  (for eps <= 1). REFERENCE's reading, the opposite vertex (toward the nearer bound), is
  absorbed by the clip on policies that saturate their actuators: on Hopper-v5 PPO and TD3
  agents it left the return at its natural value (docs/action-robustness.md).
- ``min-q``: PGD on the executed action minimising a Q function of the victim: its own
  critic Q_1 for TD3-family agents (and Stable-Baselines3 SAC/TD3 models); for agents
  without one (PPO, SB3 PPO), Q of the victim's policy learned by Sarsa from its rollouts
  (:func:`~robustpo.attacks.robust_sarsa.train_sarsa_q` without the robustness penalty),
  cached under the victim's fingerprint.
- ``min-oa-q``: PGD minimising an optimal-adversary-aware Q of the victim, learned from its
  rollouts with the OA Bellman target ``r + gamma * min_{delta in ball} Q'(s', pi(s') +
  delta)`` (the min by PGD), cached under the victim's fingerprint and eps: fine-tuned from
  the victim's own twin critics for TD3-family agents, a fresh Q for the others; an agent
  that carries its own OA critic (``q_adv``) is attacked with it.
- ``learned``: :class:`~robustpo.attacks.learned.LearnedActionAttack`.

PGD here is :func:`robustpo.core.perturb.pgd` on the executed action with the action space
as its box: 10 steps of eps/10 half-ranges from a random start within eps/10 of the victim's
action, the settings of the observation attacks.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress

from ..core.envs import make_vector_env
from ..core.nets import TwinQ
from ..core.objectives import worst_twin_q
from ..core.optim import adam, polyak_update
from ..core.perturb import pgd, worst_q
from ..errors import CheckpointError
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..training.presets import task_config, task_ppo_config
from .base import ActionAttack, action_ball, biggest_direction, register
from .cache import AttackCache, recipe_record
from .gradient import START, STEPS
from .robust_sarsa import SARSA_SCHEDULE, SarsaQ, train_sarsa_q

if TYPE_CHECKING:
    from ..agents.agent import Agent

QFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (obs, actions) -> (B,)
QModel = TypeVar("QModel", SarsaQ, TwinQ)


def half_range(agent: Agent) -> torch.Tensor:
    """Half of each action dimension's range ``(act_dim,)``, the unit of action eps."""
    return torch.as_tensor((agent.action_high - agent.action_low) / 2)


def bounds(agent: Agent) -> tuple[torch.Tensor, torch.Tensor]:
    """The action space's bounds as tensors ``(act_dim,)``."""
    return torch.as_tensor(agent.action_low), torch.as_tensor(agent.action_high)


def minimise_q(q: QFunction, agent: Agent, obs: torch.Tensor, actions: torch.Tensor,
               eps: float, generator: torch.Generator | None = None,
               steps: int = STEPS) -> torch.Tensor:
    """PGD for the executed action in the action ball (and the action space) minimising
    ``q(obs, a')``: ``steps`` sign steps of ``eps / steps`` half-ranges from a random start
    within ``eps / 10`` half-ranges (REFERENCE section 5, the Min-Q attack).

    Args:
        q: ``(obs, actions) -> (batch,)``; obs: clean normalised observations ``(batch,
            obs_dim)``; actions: the victim's, in action units, ``(batch, act_dim)``; eps:
            the radius in half-ranges; generator: of the random start.

    Returns:
        float32 executed actions ``(batch, act_dim)`` inside :func:`action_ball`.
    """
    radius = eps * half_range(agent)
    return pgd(lambda a: -q(obs, a), actions, radius, steps, random_start=True,
               generator=generator, start_radius=START * radius, box=bounds(agent))


def own_q(agent: Agent) -> QFunction | None:
    """The victim's own Q(s, a) on normalised observations and actions in action units: Q_1
    of a TD3-family agent's twin critics, or of a Stable-Baselines3 SAC/TD3 model; None for
    agents without one."""
    if "q" in agent.modules:
        return agent.modules["q"].q1
    if "critic" not in agent.modules:
        return None
    return getattr(agent.modules["critic"], "action_value", None)


@register
class RandomActionAttack(ActionAttack):
    """Uniform noise in the action ball, clipped to the action space."""

    name = "random"
    description = "uniform noise in the action ball"

    def perturb(self, agent: Agent, obs: torch.Tensor, actions: torch.Tensor, eps: float
                ) -> torch.Tensor:
        noise = torch.rand(actions.shape, generator=self.generator) * 2 - 1
        low, high = action_ball(agent, actions, eps)
        return torch.minimum(torch.maximum(actions + eps * half_range(agent) * noise, low),
                             high)


@register
class BiggestActionAttack(ActionAttack):
    """The vertex of the action ball that moves each dimension by ``eps * h_i`` away from its
    nearer bound, the largest change of the executed action (the module docstring gives the
    reading and why)."""

    name = "biggest"
    description = "largest perturbation: each actuator moved eps away from its nearer bound"

    def perturb(self, agent: Agent, obs: torch.Tensor, actions: torch.Tensor, eps: float
                ) -> torch.Tensor:
        direction = biggest_direction(agent, actions)
        ball_low, ball_high = action_ball(agent, actions, eps)
        return torch.minimum(torch.maximum(actions + eps * half_range(agent) * direction,
                                           ball_low), ball_high)


class QAttack(ActionAttack):
    """PGD minimising a Q function of the victim (:func:`minimise_q`); subclasses say which
    Q (:meth:`q_function`)."""

    learned = True

    def __init__(self, seed: int = 0, protocol: str = "quick") -> None:
        super().__init__(seed, protocol)
        self.seed = seed
        self.q: QFunction | None = None
        self.pgd_steps = STEPS  # REFERENCE section 4's convention; more to check a K-step one

    @abstractmethod
    def q_function(self, agent: Agent, eps: float) -> QFunction:
        """The Q function the attack minimises (its own, or one learned and cached)."""

    def prepare(self, agent: Agent, eps: float) -> None:
        """Resolve the Q to minimise (:meth:`q_function`): the victim's own critic at once,
        else a Q learned from its rollouts, loaded from or trained into :attr:`cache_dir`.

        Raises:
            UnknownNameError, ConfigError: from the environment factory or the task's PPO
                preset, when a Q must be learned.
        """
        self.q = self.q_function(agent, eps)
        self.details["pgd_steps"] = self.pgd_steps

    def perturb(self, agent: Agent, obs: torch.Tensor, actions: torch.Tensor, eps: float
                ) -> torch.Tensor:
        if self.q is None:
            raise RuntimeError(f"{type(self).__name__}.perturb called before prepare()")
        return minimise_q(self.q, agent, obs, actions, eps, self.generator, self.pgd_steps)

    def cached_q(self, agent: Agent, eps: float, config: dict[str, Any],
                 train: Callable[[], QModel], blank: Callable[[], QModel] | None = None
                 ) -> QModel:
        """The Q learned with ``config`` on this victim (cache keyed by both fingerprints),
        or ``train()``'s, saved for reuse. ``blank()`` makes the model a cached one is loaded
        into (default a fresh :class:`SarsaQ`)."""
        cache = AttackCache.for_attack(self.cache_dir, self.cache_name, eps, agent, config)
        if cache.valid():
            try:
                tensors, _ = load_checkpoint(cache.directory / "q.json")
                q = blank() if blank is not None else SarsaQ(agent.obs_dim, agent.act_dim)
                _module(q).load_state_dict({k.removeprefix("q."): v for k, v in tensors.items()})
                return q
            except (CheckpointError, RuntimeError, KeyError):
                pass  # a corrupt cache is retrained
        cache.invalidate()
        q = train()
        if cache.directory is not None:
            tensors = {f"q.{n}": p.detach() for n, p in _module(q).state_dict().items()}
            save_checkpoint(cache.directory / "q", tensors, {"config": config})
            cache.seal()
        return q


def _module(q: QModel) -> torch.nn.Module:
    """The parameters' module of a learned Q."""
    return q.net if isinstance(q, SarsaQ) else q


@register
class MinQAttack(QAttack):
    """``min-q``: PGD minimising the victim's own Q_1, or a Sarsa Q of its policy."""

    name = "min-q"
    description = "PGD on the action minimising the victim's Q (its own, else a Sarsa Q)"

    def q_function(self, agent: Agent, eps: float) -> QFunction:
        own = own_q(agent)
        if own is not None:
            self.details = {"q": "the victim's own critic Q_1"}
            return own
        config = {"sarsa": SARSA_SCHEDULE, "seed": self.seed,
                  "recipe": recipe_record(task_ppo_config(agent.env_id))}
        self.details = {"q": "Sarsa Q of the victim's policy", **config}
        # The Q of the policy does not depend on eps: one cache serves every radius.
        return self.cached_q(agent, 0.0, config, lambda: train_sarsa_q(
            agent, 0.0, 0.0, seed=self.seed, **SARSA_SCHEDULE))


OA_Q_SCHEDULE = {"steps": 100_000, "num_envs": 8, "batch_size": 256, "learning_starts": 5_000,
                 "tau": 0.005, "lr": 3e-4, "pgd_steps": STEPS}
# Fine-tuning a TD3-family victim's own critics starts from values already learned: half the
# steps, no warm-up beyond one batch.
OA_TWIN_Q_SCHEDULE = {**OA_Q_SCHEDULE, "steps": 50_000, "learning_starts": 2_048}


def train_oa_q(agent: Agent, eps: float, *, gamma: float, init: TwinQ | None = None,
               steps: int = 100_000, num_envs: int = 8, batch_size: int = 256,
               learning_starts: int = 5_000, tau: float = 0.005, lr: float = 3e-4,
               pgd_steps: int = STEPS, seed: int = 0, progress: bool = False) -> SarsaQ | TwinQ:
    """Q_adv of the victim's deterministic policy under the optimal action adversary of radius
    ``eps`` (half-ranges), learned from its rollouts with the OA Bellman target
    ``r + gamma * not_done * min_{delta} Q_adv'(s', clip(pi(s') + delta))``, one gradient step
    per environment step after ``learning_starts``, Polyak-averaged target, discount ``gamma``
    (the victim's task's: its PPO recipe's for a fresh Q, its TD3 recipe's for ``init``, which
    the caller also keys the cache by). The inner min is OA-TD3's: ``pgd_steps`` PGD steps from
    ``pi(s')`` without a random start over the ball and the action space, keeping the lowest
    value evaluated (:func:`~robustpo.core.perturb.worst_q`,
    :func:`~robustpo.core.objectives.worst_twin_q`), so that a target is never noisier than or
    above the unperturbed one (REFERENCE section 5).

    Two forms:

    - ``init`` None: a fresh 64-64 tanh Q (:class:`~robustpo.attacks.robust_sarsa.SarsaQ`) on
      rewards scaled by the running std of the discounted return (as PPO's, which scales Q
      and leaves its minimiser alone), smooth-L1 loss.
    - ``init`` a TD3-family victim's twin critics (:class:`~robustpo.core.nets.TwinQ`): a copy
      of them, fine-tuned as OA-TD3 trains its OA critics (raw rewards, both critics
      regressed on the smaller one's OA target, squared error). A fresh Q learned from a
      deterministic policy's rollouts sees little action variety; the critics were trained on
      TD3's exploration and only need the adversary folded in.

    The rollouts execute the victim's action shifted uniformly within the ball, so that Q_adv
    is learned on the actions the attack will choose among.

    Returns:
        the Q: on normalised observations and actions in action units; a ``TwinQ`` returns
        both critics' values ``(2, batch)``.
    """
    from ..core.normalization import RewardScaler

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    radius = eps * half_range(agent)
    low, high = bounds(agent)
    q: SarsaQ | TwinQ
    if init is None:
        q, target = SarsaQ(agent.obs_dim, agent.act_dim), SarsaQ(agent.obs_dim, agent.act_dim)
        target.net.load_state_dict(q.net.state_dict())
        online, frozen = q.net, target.net
        scaler: RewardScaler | None = RewardScaler(num_envs, gamma)

        def oa_target(next_obs: torch.Tensor, next_actions: torch.Tensor) -> torch.Tensor:
            return worst_q(target, next_obs, next_actions, radius, (low, high), pgd_steps)

        def loss_of(obs: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.smooth_l1_loss(q(obs, actions), y)
    else:
        online, frozen = copy.deepcopy(init), copy.deepcopy(init)
        q, scaler = online, None

        def oa_target(next_obs: torch.Tensor, next_actions: torch.Tensor) -> torch.Tensor:
            return worst_twin_q(frozen, next_obs, next_actions, radius, pgd_steps, (low, high))

        def loss_of(obs: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (online(obs, actions) - y).square().mean(1).sum()
    frozen.requires_grad_(False)
    opt = adam(online.parameters(), lr=lr)
    envs = make_vector_env(agent.env_id, num_envs, "thread")
    size = steps + num_envs
    data = {"obs": torch.zeros(size, agent.obs_dim), "act": torch.zeros(size, agent.act_dim),
            "rew": torch.zeros(size), "next": torch.zeros(size, agent.obs_dim),
            "cont": torch.zeros(size)}
    n = 0
    raw, _ = envs.reset(seed=seed)
    try:
        with Progress(transient=True, disable=not progress) as bar:
            task = bar.add_task(f"OA Q, eps {eps:g}", total=steps)
            while n < steps:
                obs = agent.normalize(raw)
                chosen = torch.from_numpy(agent.act_normalized(obs))
                shift = (torch.rand(chosen.shape, generator=gen) * 2 - 1) * radius
                executed = torch.minimum(torch.maximum(chosen + shift, low), high)
                raw, reward, terminated, truncated, info = envs.step(executed.numpy())
                ended = terminated | truncated
                nxt = np.array(raw, dtype=np.float64)
                for i in np.flatnonzero(ended):
                    nxt[i] = info["final_obs"][i]
                rows = slice(n, n + num_envs)
                data["obs"][rows], data["act"][rows] = obs, executed
                if scaler is not None:
                    reward = scaler.scale(reward, ended)
                data["rew"][rows] = torch.from_numpy(np.asarray(reward, dtype=np.float32))
                data["next"][rows] = agent.normalize(nxt)
                data["cont"][rows] = torch.from_numpy((~terminated).astype(np.float32))
                n += num_envs
                if n > learning_starts:
                    for _ in range(num_envs):
                        idx = torch.randint(n, (batch_size,), generator=gen)
                        s2 = data["next"][idx]
                        with torch.no_grad():
                            a2 = agent.actor(s2).clamp(low, high)
                            y = data["rew"][idx] + gamma * data["cont"][idx] * oa_target(s2, a2)
                        loss = loss_of(data["obs"][idx], data["act"][idx], y)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        polyak_update(frozen, online, tau)
                bar.update(task, completed=n)
    finally:
        envs.close()
    return q


@register
class MinOAQAttack(QAttack):
    """``min-oa-q``: PGD minimising an optimal-adversary-aware Q of the victim (its own
    ``q_adv``, else one learned by :func:`train_oa_q`)."""

    name = "min-oa-q"
    description = "PGD on the action minimising an OA-aware Q (own q_adv, else learned)"

    def q_function(self, agent: Agent, eps: float) -> QFunction:
        if "q_adv" in agent.modules:
            self.details = {"q": "the victim's own OA critic"}
            return agent.modules["q_adv"].q1
        if "q" in agent.modules and isinstance(agent.modules["q"], TwinQ):
            twin = agent.modules["q"]
            # init names the starting point in the cache key (the victim's critics)
            config = {"oa_q": OA_TWIN_Q_SCHEDULE, "inner_min": "pgd_best", "seed": self.seed,
                      "init": "own critics", "gamma": task_config("td3", agent.env_id).td3.gamma}
            self.details = {"q": "OA Q fine-tuned from the victim's own critics", **config}
            tuned = self.cached_q(agent, eps, config, lambda: train_oa_q(
                agent, eps, gamma=config["gamma"], init=twin, seed=self.seed, progress=True,
                **OA_TWIN_Q_SCHEDULE),
                blank=lambda: copy.deepcopy(twin))
            return tuned.q1
        # inner_min names the target's rule in the cache key (the lowest value PGD evaluated)
        config = {"oa_q": OA_Q_SCHEDULE, "inner_min": "pgd_best", "seed": self.seed,
                  "gamma": task_ppo_config(agent.env_id).ppo.gamma}
        self.details = {"q": "OA Q of the victim's policy", **config}
        return self.cached_q(agent, eps, config, lambda: train_oa_q(
            agent, eps, gamma=config["gamma"], seed=self.seed, progress=True, **OA_Q_SCHEDULE))
