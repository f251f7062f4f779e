"""The evaluation protocol: batched deterministic episodes of an agent, clean or under an
observation or action attack, and the statistics of their returns.

The protocol of REFERENCE section 1: the policy acts deterministically (its mean), the
observation normaliser is frozen, the attack perturbs the normalised observation inside the
l_inf eps-ball (checked at every step), and the return is the sum of the environment's raw
rewards. An action attack instead changes the action the policy chose, within eps half-ranges
of it and inside the action space (REFERENCE section 5; checked at every step). Attacks are
given as objects here (anything with ``name``, ``target``, ``prepare`` and ``perturb``, e.g.
an :class:`~robustpo.attacks.base.ObservationAttack`); names are resolved by
:func:`robustpo.results.suite.evaluate`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from scipy import stats

from ..core.envs import make_env
from ..core.perturb import check_action_in_ball, check_in_ball
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..agents.agent import Agent


class Perturbation(Protocol):
    """What the protocol needs of an attack (:class:`robustpo.attacks.base.ObservationAttack`
    and :class:`~robustpo.attacks.base.ActionAttack` are ones): a name, a ``target``
    (``observation`` or ``action``), a one-time ``prepare`` and a batched ``perturb``: of
    normalised observations ``(batch, obs_dim)`` into the eps-ball, or, for an action attack,
    ``perturb(agent, obs, actions, eps)`` of the victim's actions into the action ball."""

    name: str
    target: str
    details: dict[str, Any]

    def prepare(self, agent: Agent, eps: float) -> None: ...

    def perturb(self, agent: Agent, obs: torch.Tensor, *args: Any) -> torch.Tensor: ...


@dataclass
class ReturnStats:
    """Summary of episode returns: mean, sample std, median and a bootstrap 95% CI of the mean."""

    mean: float
    std: float
    median: float
    ci95: tuple[float, float]
    n: int

    @classmethod
    def of(cls, returns: list[float] | np.ndarray, seed: int = 0) -> ReturnStats:
        """Summarise returns; the CI is a BCa bootstrap (10,000 resamples) of the mean.

        Args:
            returns: undiscounted raw episode returns ``(n,)``; seed: seeds the bootstrap.
            With n < 2 or identical returns the CI is ``(mean, mean)``.

        Raises:
            ValueError: no returns.
        """
        x = np.asarray(returns, dtype=np.float64)
        if len(x) == 0:
            raise ValueError("no returns to summarise")
        if len(x) < 2 or np.ptp(x) == 0:
            ci = (float(x.mean()), float(x.mean()))
        else:
            res = stats.bootstrap(
                (x,), np.mean, n_resamples=10_000, confidence_level=0.95,
                rng=np.random.default_rng(seed),
            )
            ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
        std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
        return cls(float(x.mean()), std, float(np.median(x)), ci, len(x))


@dataclass
class EvalResult:
    """Returns of ``episodes`` episodes of ``env`` under ``attack`` at radius ``eps``."""

    env: str
    attack: str
    eps: float
    episodes: int
    stats: ReturnStats
    returns: list[float] = field(repr=False)
    lengths: list[int] = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict, repr=False)  # e.g. a learned
    # attack's scan: every candidate configuration with its screened return

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the fields, ``stats`` with ``ci95`` as a list."""
        out = asdict(self)
        out["stats"]["ci95"] = list(self.stats.ci95)
        return out


def check_eval_args(episodes: int, eps: float) -> None:
    """Validate an evaluation's episode count and radius.

    Raises:
        ConfigError: ``episodes < 1``, or ``eps`` negative, NaN or infinite.
    """
    if not (isinstance(episodes, int) and episodes >= 1):
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}.")
    if not (math.isfinite(eps) and eps >= 0):
        raise ConfigError(
            f"eps must be a finite number >= 0 (an l_inf radius: normalised observation "
            f"units, e.g. 0.075 on Hopper-v5, or half-ranges of the action space with --target "
            f"action, e.g. 0.1), got {eps!r}.")


def check_agent_fits_env(agent: Agent, env: Any, env_id: str) -> None:
    """Check that ``agent`` takes ``env``'s observations and gives its actions.

    Raises:
        ConfigError: the observation or action vector lengths differ (an agent trained on
            another environment, or an agent description edited by hand).
    """
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    if obs_shape != (agent.obs_dim,) or act_shape != (agent.act_dim,):
        raise ConfigError(
            f"{env_id} has observations of shape {obs_shape} and actions of shape {act_shape}, "
            f"but the agent takes {agent.obs_dim} observation and gives {agent.act_dim} action "
            f"values: it was trained on another environment (its description names "
            f"{agent.env_id}). Evaluate it on the environment it was trained on."
        )


def run_episodes(
    agent: Agent,
    attack: Perturbation,
    eps: float,
    episodes: int = 50,
    *,
    num_envs: int = 10,
    seed: int = 0,
    env_id: str | None = None,
) -> EvalResult:
    """Run ``episodes`` deterministic episodes, ``num_envs`` at a time, under ``attack``.

    Episode ``j`` starts from ``reset(seed=seed + j)``, so results do not depend on
    ``num_envs`` (beyond float rounding of batched matrix products). Observations of all
    running episodes are normalised (frozen statistics), perturbed and fed to the policy as
    one batch.

    Args:
        agent: the agent to evaluate.
        attack: the attack (prepared here, once, holding its cache's lock).
        eps: l_inf radius: normalised observation units, or half-ranges of the action space
            for an action attack (ignored by ``none``).
        episodes: number of episodes (>= 1).
        num_envs: environments stepped side by side.
        seed: seed of the first episode.
        env_id: environment to evaluate on (default: the one the agent was trained on).

    Raises:
        ConfigError: ``episodes < 1``, a negative or non-finite ``eps``, or an agent that does
            not fit the environment (:func:`check_agent_fits_env`).
        UnknownNameError: unknown environment.
        PerturbationOutOfBallError: the attack left the eps-ball (ActionOutOfBallError: the
            action ball or the action space).
        BusyError: another process is training this learned attack's cached models.
    """
    check_eval_args(episodes, eps)
    env_id = env_id or agent.env_id
    envs = [make_env(env_id) for _ in range(min(num_envs, episodes))]
    check_agent_fits_env(agent, envs[0], env_id)
    attack.prepare_exclusively(agent, eps)
    on_actions = attack.target == "action"
    low, high = torch.as_tensor(agent.action_low), torch.as_tensor(agent.action_high)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    episode_of = list(range(len(envs)))  # episode each env is running, -1 when idle
    obs = [env.reset(seed=seed + j)[0] for j, env in zip(episode_of, envs)]
    next_episode = len(envs)
    try:
        while True:
            active = [i for i, j in enumerate(episode_of) if j >= 0]
            if not active:
                break
            clean = agent.normalize(np.stack([obs[i] for i in active]))
            if on_actions:
                chosen = torch.from_numpy(agent.act_normalized(clean))
                executed = attack.perturb(agent, clean, chosen, eps)
                check_action_in_ball(executed, chosen, eps, low, high, attack.name)
                actions = executed.numpy()
            else:
                perturbed = attack.perturb(agent, clean, eps)
                check_in_ball(perturbed, clean, eps, attack.name)
                actions = agent.act_normalized(perturbed)
            for k, i in enumerate(active):
                obs[i], reward, terminated, truncated, _ = envs[i].step(actions[k])
                j = episode_of[i]
                returns[j] += reward
                lengths[j] += 1
                if terminated or truncated:
                    if next_episode < episodes:
                        episode_of[i] = next_episode
                        obs[i], _ = envs[i].reset(seed=seed + next_episode)
                        next_episode += 1
                    else:
                        episode_of[i] = -1
    finally:
        for env in envs:
            env.close()
    return EvalResult(
        env_id, attack.name, float(eps), episodes, ReturnStats.of(returns, seed),
        returns.tolist(), lengths.tolist(), dict(getattr(attack, "details", {})),
    )
