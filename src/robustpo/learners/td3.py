"""TD3 (Fujimoto, van Hoof, Meger, ICML 2018, "Addressing Function Approximation Error in
Actor-Critic Methods", Algorithm 1), with a pluggable method of the off-policy family
(:mod:`robustpo.adversaries.offpolicy`) that may change the executed actions, the critics'
target and the actor's loss.

The recipe is the authors' code (REFERENCE section 5): deterministic ReLU actor with a tanh
output, twin ReLU critics (one batched network, :class:`~robustpo.core.nets.TwinQ`), the
clipped double-Q target, target policy smoothing (0.2, clipped to 0.5), actor and target
updates every 2 critic updates, Polyak rate 0.005, Adam 3e-4, batch 256, Gaussian exploration
noise 0.1, 25,000 initial uniformly random steps, a 1M-transition replay buffer. Noise scales
are fractions of each action dimension's half-range. One gradient step follows every
environment step; an iteration is ``iteration_steps`` environment steps.

:class:`TD3Learner` holds the complete training state (networks, targets, optimisers, the
replay buffer, random generators, the simulators' states); an interrupted run resumes
bit-identically on MuJoCo tasks.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..adversaries.base import method_class
from ..adversaries.offpolicy import OffPolicyMethod, TD3Networks
from ..agents.agent import Agent
from ..config.sections import TrainConfig
from ..core.envs import make_vector_env
from ..core.nets import DeterministicActor, TwinQ
from ..core.normalization import ObservationNormalizer
from ..core.optim import adam, load_optimizer, optimizer_tensors, polyak_update
from ..core.replay import ReplayBuffer, Transitions
from ..errors import CheckpointError, ConfigError, NonFiniteError
from .base import EpisodeTracker, Learner, method_generator

TD3_METRICS = ["critic_loss", "actor_loss", "q_mean", "gradient_steps"]
NO_CLIP = float(np.finfo(np.float32).max)  # the normaliser's bound when it does not normalise


def td3_agent(env_id: str, obs_dim: int, act_dim: int, action_low: np.ndarray,
              action_high: np.ndarray, hidden: list[int], normalize_obs: bool,
              obs_clip: float, attack_eps: float | None, hidden_dtype: str = "float32") -> Agent:
    """The TD3 family's agent: a :class:`DeterministicActor` (``"actor"``) and the twin
    critics (``"q"``), actor built first; with ``normalize_obs`` false the normaliser is the
    identity (frozen at mean 0, variance 1, no bound), so observation eps is in raw units.
    ``hidden_dtype`` names the dtype of both networks' hidden-to-hidden products
    (:data:`~robustpo.core.nets.HIDDEN_DTYPES`)."""
    actor = DeterministicActor(obs_dim, act_dim, hidden, action_low, action_high, hidden_dtype)
    critics = TwinQ(obs_dim, act_dim, hidden, hidden_dtype)
    normalizer = ObservationNormalizer(obs_dim, obs_clip if normalize_obs else NO_CLIP)
    normalizer.frozen = not normalize_obs
    return Agent(env_id, {"actor": actor, "q": critics}, normalizer, action_low, action_high,
                 attack_eps)


class TD3Learner(Learner):
    """TD3 on ``cfg.td3.num_envs`` copies of ``cfg.env`` with the method of ``cfg.algo``.

    Args:
        cfg: validated :class:`TrainConfig` with a ``td3`` section.
        method: the method's plug-in; default: the registered class of ``cfg.algo``.
        envs: a vector environment to learn on instead of copies of ``cfg.env``; the learner
            closes it.

    Raises:
        UnknownNameError / ConfigError: from the environment factory or the method registry,
            or a config that is not the TD3 family's.
    """

    name = "td3"

    def __init__(self, cfg: TrainConfig, method: OffPolicyMethod | None = None,
                 envs: gym.vector.VectorEnv | None = None) -> None:
        cls = method_class(cfg.algo)
        if cfg.td3 is None or (method is None and (
                cls.learner != "td3" or not isinstance(cfg.method, cls.config_class))):
            raise ConfigError(
                f"{cfg.algo!r} is not a method of the TD3 family, or its config lacks the td3 "
                f"section; build the config with robustpo.training.presets.resolve_config.")
        self.cfg, t = cfg, cfg.td3
        torch.set_num_threads(cfg.run.torch_threads)
        torch.manual_seed(cfg.seed)
        self.envs = envs or make_vector_env(cfg.env, t.num_envs, cfg.run.vector_mode)
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
        self.agent = td3_agent(cfg.env, obs_dim, act_dim, act_space.low, act_space.high,
                               t.hidden, t.normalize_obs, t.obs_clip, cfg.attack_eps,
                               t.hidden_dtype)
        actor, critics = self.agent.actor, self.agent.modules["q"]
        self.nets = TD3Networks(
            actor, critics, copy.deepcopy(actor).requires_grad_(False),
            copy.deepcopy(critics).requires_grad_(False),
            torch.as_tensor(act_space.low, dtype=torch.float32),
            torch.as_tensor(act_space.high, dtype=torch.float32))
        self.actor_optimizer = adam(actor.parameters(), lr=t.actor_lr)
        self.critic_optimizer = adam(critics.parameters(), lr=t.critic_lr)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.method = method or cls(cfg.method, t, cfg.attack_eps,
                                    method_generator(cfg.seed))
        self.method.build(self.nets, self.agent)
        self.buffer = ReplayBuffer(t.buffer_size, obs_dim, act_dim)
        env_seed = int(np.random.SeedSequence(cfg.seed).generate_state(1)[0] >> 1)
        self.raw_obs, _ = self.envs.reset(seed=env_seed)
        self.episodes = EpisodeTracker(t.num_envs)
        self.iteration = 0
        self.global_step = 0
        self.gradient_steps = 0
        self._online_params = list(actor.parameters()) + list(critics.parameters())
        self._target_params = (list(self.nets.actor_target.parameters())
                               + list(self.nets.critics_target.parameters()))

    @property
    def total_iterations(self) -> int:
        return self.cfg.td3.iterations

    @property
    def total_steps(self) -> int:
        return self.cfg.td3.iterations * self.cfg.td3.iteration_steps

    @property
    def metric_names(self) -> list[str]:
        return TD3_METRICS + list(self.method.metric_names)

    # ---- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def _actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Uniformly random actions before ``learning_starts``, then the actor's plus
        Gaussian exploration noise, clipped to the bounds; the method may change them."""
        t, nets = self.cfg.td3, self.nets
        shape = (obs.shape[0], self.agent.act_dim)
        if self.global_step < t.learning_starts:
            return nets.low + (nets.high - nets.low) * torch.rand(shape, generator=self.generator)
        noise = torch.randn(shape, generator=self.generator).mul_(
            t.exploration_noise * nets.half_range)
        actions = torch.clamp(nets.actor(obs) + noise, nets.low, nets.high)
        return self.method.explore(obs, actions, nets)

    def collect(self) -> Transitions:
        """One vector step: act, step the copies, store the transitions.

        Returns:
            the ``num_envs`` stored :class:`Transitions`: raw observations (normalised when
            sampled), executed actions in action units, raw rewards. Updates the observation
            normaliser when ``td3.normalize_obs``.

        Raises:
            NonFiniteError: the environment returned a NaN or infinite reward or observation.
        """
        if self.cfg.td3.normalize_obs:
            obs = self.agent.normalize(self.raw_obs, update=True)
        else:  # the identity normaliser
            obs = torch.as_tensor(np.asarray(self.raw_obs, dtype=np.float32))
        actions = self._actions(obs)
        raw_next, reward, terminated, truncated, info = self.envs.step(actions.numpy())
        if not (np.isfinite(reward).all() and np.isfinite(raw_next).all()):
            bad = "reward" if not np.isfinite(reward).all() else "observation"
            raise NonFiniteError(f"the environment's {bad}", self.iteration, None)
        next_obs = np.array(raw_next, dtype=np.float32)
        for i in np.flatnonzero(terminated | truncated):  # the copy has reset: its last obs
            next_obs[i] = info["final_obs"][i]
        batch = Transitions(
            torch.as_tensor(np.asarray(self.raw_obs, dtype=np.float32)), actions,
            torch.as_tensor(reward, dtype=torch.float32), torch.from_numpy(next_obs),
            torch.as_tensor(~terminated, dtype=torch.float32))
        self.buffer.add(batch)
        self.episodes.track(reward, terminated | truncated)
        self.raw_obs = raw_next
        self.global_step += self.cfg.td3.num_envs
        return batch

    # ---- learning -----------------------------------------------------------------------
    def _normalized(self, batch: Transitions) -> Transitions:
        """The sampled batch with observations through the agent's normaliser (current
        statistics), unchanged when it is the identity."""
        if not self.cfg.td3.normalize_obs:
            return batch
        rms, clip = self.agent.obs_normalizer.rms, self.agent.obs_normalizer.clip
        mean = torch.as_tensor(rms.mean, dtype=torch.float32)
        scale = torch.as_tensor(1.0 / np.sqrt(rms.var + 1e-8), dtype=torch.float32)

        def norm(x: torch.Tensor) -> torch.Tensor:
            return ((x - mean) * scale).clamp_(-clip, clip)

        return Transitions(norm(batch.obs), batch.actions, batch.rewards, norm(batch.next_obs),
                           batch.not_done)

    def gradient_step(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One critic update on a sampled batch; every ``policy_delay``-th, an actor update
        and the Polyak update of both targets. Returns the critic loss, the actor loss (None
        without an actor update) and the batch's mean Q_1, as tensors (no synchronisation)."""
        t, nets = self.cfg.td3, self.nets
        batch = self._normalized(self.buffer.sample(t.batch_size, self.generator))
        target = self.method.target(nets, batch, self.generator)
        q = nets.critics(batch.obs, batch.actions)
        critic_loss = (q - target).square().mean(1).sum()  # MSE of each critic, summed
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.method.after_critic_update(nets, batch)
        self.gradient_steps += 1
        actor_loss = None
        if self.gradient_steps % t.policy_delay == 0:
            actor_loss, grads = self.method.actor_gradients(nets, batch.obs)
            for param, grad in zip(nets.actor.parameters(), grads, strict=True):
                param.grad = grad
            self.actor_optimizer.step()
            self.method.after_actor_update(nets, batch)
            polyak_update(self._target_params, self._online_params, t.tau)
        return critic_loss.detach(), None if actor_loss is None else actor_loss.detach(), \
            q[0].detach().mean()

    def step(self) -> dict[str, float]:
        """One iteration: ``iteration_steps`` environment steps, each vector step followed by
        one gradient step per transition once ``learning_starts`` steps have been taken.

        Raises:
            NonFiniteError: a loss or an environment output became NaN or infinite.
        """
        t = self.cfg.td3
        critic_losses, actor_losses, q_means = [], [], []
        for _ in range(t.iteration_steps // t.num_envs):
            self.collect()
            if self.global_step <= t.learning_starts:
                continue
            for _ in range(t.num_envs):
                critic, actor, q_mean = self.gradient_step()
                critic_losses.append(critic)
                q_means.append(q_mean)
                if actor is not None:
                    actor_losses.append(actor)
        self.iteration += 1

        def mean(values: list[torch.Tensor]) -> float | str:
            return float(torch.stack(values).mean()) if values else ""

        metrics = {"critic_loss": mean(critic_losses), "actor_loss": mean(actor_losses),
                   "q_mean": mean(q_means), "gradient_steps": self.gradient_steps,
                   **self.method.metrics()}
        for name in ("critic_loss", "actor_loss"):
            if metrics[name] != "" and not np.isfinite(metrics[name]):
                raise NonFiniteError(f"the {name.replace('_', ' ')}", self.iteration, None)
        return metrics

    # ---- exact save / restore -----------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Agent, targets, Adam moments, replay buffer, generators, episode sums, simulators."""
        out = self.run_state_tensors()
        for name, module in (("actor", self.nets.actor_target), ("q", self.nets.critics_target)):
            out.update({f"target.{name}.{k}": v for k, v in module.state_dict().items()})
        out.update(optimizer_tensors(self.actor_optimizer, "optim.actor."))
        out.update(optimizer_tensors(self.critic_optimizer, "optim.critic."))
        out.update(self.buffer.state_tensors())
        out.update({f"method.{k}": v for k, v in self.method.state_tensors().items()})
        out["rng.torch"] = self.generator.get_state()
        out["rng.method"] = self.method.generator.get_state()
        return out

    def state_meta(self) -> dict[str, Any]:
        """Agent spec, config, counters, Adam groups, recent episodes, env time limits."""
        return {**self.run_state_meta(), "gradient_steps": self.gradient_steps,
                "actor_param_groups": self.actor_optimizer.state_dict()["param_groups"],
                "critic_param_groups": self.critic_optimizer.state_dict()["param_groups"]}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str) -> None:
        """Load a state saved by :meth:`state_tensors` and :meth:`state_meta`; on a task
        without a savable simulator state (Box2D) fresh episodes start.

        Raises:
            CheckpointError: the checkpoint does not fit this learner's config and networks.
        """
        try:
            self.restore_run_state(tensors, meta, source)
            for name, module in (("actor", self.nets.actor_target),
                                 ("q", self.nets.critics_target)):
                prefix = f"target.{name}."
                module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                        if k.startswith(prefix)})
            load_optimizer(self.actor_optimizer, tensors, "optim.actor.",
                           meta["actor_param_groups"])
            load_optimizer(self.critic_optimizer, tensors, "optim.critic.",
                           meta["critic_param_groups"])
            self.buffer.restore(tensors)
            self.method.restore({k[len("method."):]: v for k, v in tensors.items()
                                 if k.startswith("method.")}, meta)
            self.generator.set_state(tensors["rng.torch"])
            self.method.generator.set_state(tensors["rng.method"])
            self.gradient_steps = int(meta["gradient_steps"])
        except (KeyError, ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(
                f"{source} does not fit this run's config (env {self.cfg.env}, TD3 "
                f"{self.cfg.td3.hidden}): {type(exc).__name__}: {str(exc).splitlines()[0]}. "
                f"Resume with the config the run was started with."
            ) from None
