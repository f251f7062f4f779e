"""PPO (= SPO in the BARPO paper): rollout, GAE, clipped update, with a pluggable training
adversary (:mod:`robustpo.adversaries`) that supplies the policy loss of each minibatch.

The recipe is the one of REFERENCE section 3 (SA_PPO / ATLA / CAR-RL code bases, following
Schulman et al. 2017 and Engstrom et al. 2020): Gaussian MLP policy with state-independent
log-std, separate value MLP, running observation normalisation (clip 10), reward scaling by
the running std of the discounted return (clip 10), GAE, clipped surrogate (0.2), 10 epochs of
32 minibatches, Adam (eps 1e-5) with separate policy and value learning rates, linear
learning-rate annealing, optional value clipping.

:class:`PPOLearner` holds the complete training state: networks, optimiser, running
statistics, random generators and the environments' simulator states; ``state_tensors`` /
``state_meta`` and ``restore`` save and reload it exactly, so an interrupted run resumes
bit-identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..adversaries.base import Minibatch, TrainingAdversary, method_class
from ..agents.agent import Agent, gaussian_agent
from ..config.sections import TrainConfig
from ..core.envs import make_vector_env
from ..core.gae import compute_gae
from ..core.normalization import RewardScaler
from ..core.optim import adam, load_optimizer, optimizer_tensors
from ..core.surrogate import value_loss, value_loss_and_grads
from ..errors import CheckpointError, ConfigError, NonFiniteError
from .base import EpisodeTracker, Learner, method_generator

PPO_METRICS = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
               "policy_lr", "policy_std"]


@dataclass
class Rollout:
    """One batch of experience, tensors of shape ``(T, num_envs, ...)``; observations
    normalised, actions as sampled (unclipped), rewards scaled. ``next_obs`` and
    ``next_actions`` are the state after each step and the action taken there in the same
    episode (at a truncation or the rollout's end: the final state and the policy's mean
    action); ``continues`` is 0.0 where the episode terminated; ``ends`` is 1.0 where it
    ended (terminated or truncated) at that step."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    next_obs: torch.Tensor
    next_actions: torch.Tensor
    ends: torch.Tensor

    def flat(self) -> Rollout:
        """The same tensors with time and environment merged: ``(T * num_envs, ...)``."""
        def f(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(-1, *x.shape[2:])

        return Rollout(*(f(getattr(self, k)) for k in self.__dataclass_fields__))


def _make_adam(agent: Agent, policy_lr: float, value_lr: float, eps: float
               ) -> torch.optim.Adam:
    return adam([{"params": list(agent.actor.parameters()), "lr": policy_lr},
                 {"params": list(agent.critic.parameters()), "lr": value_lr}], eps=eps)


class PPOLearner(Learner):
    """PPO on ``cfg.ppo.num_envs`` vectorised copies of ``cfg.env``, its policy loss given by
    the training adversary of ``cfg.algo``.

    Args:
        cfg: validated :class:`TrainConfig` (``ppo`` section: the recipe; ``method``: the
            adversary's section; ``run``: backend and threads).
        adversary: the training adversary; default: the registered class of ``cfg.algo``
            built from ``cfg.method``.
        envs: a vector environment to learn on instead of ``cfg.ppo.num_envs`` copies of
            ``cfg.env``, for MDPs built on a task (a learned adversary's,
            :mod:`robustpo.attacks.learned`); the learner closes it.

    Raises:
        UnknownNameError / ConfigError: from the environment factory or the method registry,
            or a method section that is not ``cfg.algo``'s.
    """

    name = "ppo"
    budget_schedule = ("anneals its learning rates to 0 over total_steps (ppo.anneal_lr), and "
                       "robust methods ramp eps over the first method.eps_ramp of the run")

    def __init__(self, cfg: TrainConfig, adversary: TrainingAdversary | None = None,
                 envs: gym.vector.VectorEnv | None = None) -> None:
        self.cfg, p = cfg, cfg.ppo
        method = method_class(cfg.algo)
        if adversary is None and not isinstance(cfg.method, method.config_class):
            raise ConfigError(
                f"The config's method section is a {type(cfg.method).__name__}, but "
                f"{cfg.algo!r} takes a {method.config_class.__name__}; build the config with "
                f"robustpo.training.presets.resolve_config.")
        torch.set_num_threads(cfg.run.torch_threads)
        torch.manual_seed(cfg.seed)
        self.envs = envs or make_vector_env(cfg.env, p.num_envs, cfg.run.vector_mode)
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        self.agent = gaussian_agent(
            cfg.env, obs_space.shape[0], act_space.shape[0], act_space.low, act_space.high,
            p.hidden, p.init_std, p.obs_clip, cfg.attack_eps,
        )
        self.optimizer = _make_adam(self.agent, p.policy_lr, p.value_lr, p.adam_eps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        if adversary is None:
            adversary = method(cfg.method, p, cfg.attack_eps, method_generator(cfg.seed))
        self.adversary = adversary
        self.adversary.build(self.agent)
        self.reward_scaler = RewardScaler(p.num_envs, p.gamma, p.reward_clip)
        # Copy i of the vector env is seeded with env_seed + i; deriving env_seed from the run
        # seed keeps runs with nearby seeds from sharing environment seeds.
        env_seed = int(np.random.SeedSequence(cfg.seed).generate_state(1)[0] >> 1)
        self.raw_obs, _ = self.envs.reset(seed=env_seed)
        self.episodes = EpisodeTracker(p.num_envs)
        self.iteration = 0
        self.global_step = 0

    @property
    def total_iterations(self) -> int:
        return self.cfg.ppo.iterations

    @property
    def total_steps(self) -> int:
        return self.cfg.ppo.iterations * self.cfg.ppo.batch_size

    @property
    def metric_names(self) -> list[str]:
        return PPO_METRICS + list(self.adversary.metric_names)

    def step(self) -> dict[str, float]:
        """One iteration: :meth:`collect` a rollout, let the method set its advantages, then
        :meth:`update` on it."""
        rollout = self.collect()
        rollout.advantages = self.adversary.rollout_advantages(rollout, self.agent)
        return self.update(rollout)

    # ---- experience ---------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> Rollout:
        """Run ``rollout_steps`` vector steps with the stochastic policy; compute GAE.

        Only the action sampling runs per step; values and log-probabilities of the whole batch
        are computed afterwards in one call each. Updates the observation normaliser at every
        step.

        Returns:
            a :class:`Rollout` of ``(rollout_steps, num_envs, ...)`` tensors (normalised
            observations, actions as sampled, scaled rewards, the method's advantages).

        Raises:
            NonFiniteError: the environment returned a NaN or infinite reward or observation.
        """
        cfg, agent = self.cfg.ppo, self.agent
        T, N = cfg.rollout_steps, cfg.num_envs
        obs_buf = torch.empty(T, N, agent.obs_dim)
        act_buf = torch.empty(T, N, agent.act_dim)
        rewards = np.empty((T, N), dtype=np.float32)
        ends = np.empty((T, N), dtype=bool)
        terminated_buf = np.empty((T, N), dtype=bool)
        truncated_at: list[tuple[int, int, np.ndarray]] = []  # (t, env, final raw obs)
        std = agent.actor.log_std.exp()
        for t in range(T):
            obs = torch.from_numpy(agent.obs_normalizer.normalize(self.raw_obs))
            mean = agent.actor(obs)
            action = torch.addcmul(mean, std, torch.randn(mean.shape, generator=self.generator))
            obs_buf[t], act_buf[t] = obs, action
            env_action = np.clip(action.numpy(), agent.action_low, agent.action_high)
            raw_next, reward, terminated, truncated, info = self.envs.step(env_action)
            if not (np.isfinite(reward).all() and np.isfinite(raw_next).all()):
                bad = "reward" if not np.isfinite(reward).all() else "observation"
                raise NonFiniteError(f"the environment's {bad}", self.iteration, None)
            ended = terminated | truncated
            rewards[t] = self.reward_scaler.scale(reward, ended)
            ends[t] = ended
            terminated_buf[t] = terminated
            for i in np.flatnonzero(truncated & ~terminated):
                truncated_at.append((t, int(i), info["final_obs"][i]))
            self.episodes.track(reward, ended)
            self.raw_obs = raw_next
        last_obs = torch.from_numpy(agent.obs_normalizer.normalize(self.raw_obs, update=False))
        values = agent.critic(torch.cat([obs_buf.view(T * N, -1), last_obs])).view(T + 1, N)
        log_probs = agent.actor.log_prob(agent.actor(obs_buf), act_buf)
        end_buf = torch.from_numpy(ends.astype(np.float32))
        # The value of the state following s_t in the same episode: V(s_{t+1}) while it goes
        # on, V(final observation) where it was truncated, 0 where it terminated.
        next_values = values[1:] * (1.0 - end_buf)
        next_obs = torch.cat([obs_buf[1:], last_obs[None]])
        next_actions = torch.cat([act_buf[1:], agent.actor(last_obs)[None]])
        if truncated_at:
            final = np.stack([f for _, _, f in truncated_at])
            final_norm = torch.from_numpy(agent.obs_normalizer.normalize(final, update=False))
            rows, cols = zip(*((t, i) for t, i, _ in truncated_at))
            next_values[list(rows), list(cols)] = agent.critic(final_norm)
            next_obs[list(rows), list(cols)] = final_norm
            next_actions[list(rows), list(cols)] = agent.actor(final_norm)
        rewards_t = torch.from_numpy(rewards)
        adv, ret = compute_gae(rewards_t, values[:-1], next_values, end_buf, cfg.gamma,
                               cfg.gae_lambda)
        self.global_step += T * N
        continues = torch.from_numpy((~terminated_buf).astype(np.float32))
        return Rollout(obs_buf, act_buf, log_probs, values[:-1], adv, ret, rewards_t, continues,
                       next_obs, next_actions, end_buf)

    # ---- update -------------------------------------------------------------------------
    def update(self, rollout: Rollout) -> dict[str, float]:
        """``epochs`` passes of ``minibatches`` Adam steps over the batch, the policy loss of
        each minibatch given by the training adversary at this iteration's eps.

        Raises:
            NonFiniteError: a loss became NaN or infinite (before the step that would spread it).
        """
        cfg, agent, adversary = self.cfg.ppo, self.agent, self.adversary
        if cfg.anneal_lr:
            frac = 1.0 - self.iteration / cfg.iterations
            for group, lr in zip(self.optimizer.param_groups, (cfg.policy_lr, cfg.value_lr)):
                group["lr"] = lr * frac
        batch = rollout.flat()
        obs_dim, act_dim = batch.obs.shape[1], batch.actions.shape[1]
        # One gather per epoch on a packed copy; minibatches are then contiguous views.
        packed = torch.cat([batch.obs, batch.actions, torch.stack(
            [batch.log_probs, batch.values, batch.advantages, batch.returns], 1)], 1)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        n_actor = len(list(agent.actor.parameters()))
        value_clip = cfg.clip_eps if cfg.value_clip else None
        eps = adversary.eps(self.iteration)
        losses: list[torch.Tensor] = []
        diagnostics: list[torch.Tensor] = []
        for epoch in range(cfg.epochs):
            shuffled = packed[torch.randperm(cfg.batch_size, generator=self.generator)]
            for mb in shuffled.split(cfg.minibatch_size):
                obs, actions = mb[:, :obs_dim], mb[:, obs_dim:obs_dim + act_dim]
                old_log_probs, old_values, adv, returns = mb[:, obs_dim + act_dim:].unbind(1)
                if cfg.norm_adv:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                minibatch = Minibatch(obs, actions, old_log_probs, adv, old_values, returns)
                policy = adversary.step(agent.actor, minibatch, eps, analytic=cfg.analytic_grads)
                value_term = adversary.value_loss_term(agent.critic, minibatch)
                if policy.grads is not None and value_term is None:
                    value, critic_grads = value_loss_and_grads(
                        agent.critic, obs, old_values, returns, value_clip)
                    self._check_finite(policy.loss, value)
                    for p, g in zip(params, [*policy.grads, *critic_grads]):
                        p.grad = g
                else:
                    value = value_loss(agent.critic(obs), old_values, returns, value_clip)
                    if value_term is not None:
                        value = value + value_term
                    self._check_finite(policy.loss, value)
                    self.optimizer.zero_grad(set_to_none=True)
                    if policy.grads is not None:  # closed-form policy, autograd value term
                        value.backward()
                        for p, g in zip(params, policy.grads):
                            p.grad = g
                    else:
                        loss = policy.loss + value - cfg.entropy_coef * agent.actor.entropy()
                        loss.backward()
                    for p in params[:n_actor]:  # a term may not reach every parameter
                        if p.grad is None:
                            p.grad = torch.zeros_like(p)
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
                self.optimizer.step()
                losses.append(torch.stack([policy.loss.detach(), value.detach()]))
                if epoch == cfg.epochs - 1:  # diagnostics of the last pass over the batch
                    with torch.no_grad():
                        ratio = policy.ratio
                        diagnostics.append(torch.stack([
                            ((ratio - 1) - torch.log(ratio)).mean(),
                            ((ratio - 1).abs() > cfg.clip_eps).float().mean(),
                            *(m.detach() for m in policy.metrics.values()),
                        ]))
                        metric_keys = list(policy.metrics)
        self.iteration += 1
        policy_loss_mean, value_loss_mean = torch.stack(losses).mean(0).tolist()
        approx_kl, clip_fraction, *extra = torch.stack(diagnostics).mean(0).tolist()
        return {
            "policy_loss": policy_loss_mean,
            "value_loss": value_loss_mean,
            "entropy": float(agent.actor.entropy().detach()),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
            "policy_lr": self.optimizer.param_groups[0]["lr"],
            "policy_std": float(agent.actor.log_std.detach().exp().mean()),
            **adversary.iteration_metrics(eps),
            **dict(zip(metric_keys, extra)),
        }

    def _check_finite(self, policy: torch.Tensor, value: torch.Tensor) -> None:
        """Raise :class:`NonFiniteError` naming the loss that became NaN or infinite."""
        if torch.isfinite(policy + value):
            return
        names = (f"the policy loss ({self.cfg.algo} surrogate)", "the value loss")
        bad = [n for n, v in zip(names, (policy, value)) if not torch.isfinite(v)]
        raise NonFiniteError(" and ".join(bad), self.iteration, None)

    # ---- exact save / restore -----------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Agent, Adam moments, generators, reward statistics, episode sums, MuJoCo states."""
        out = self.run_state_tensors()
        out.update(optimizer_tensors(self.optimizer, "optim."))
        out["rng.torch"] = self.generator.get_state()
        out["rng.adversary"] = self.adversary.generator.get_state()
        out["reward_rms.mean"] = torch.as_tensor(self.reward_scaler.rms.mean)
        out["reward_rms.var"] = torch.as_tensor(self.reward_scaler.rms.var)
        out["reward_rms.count"] = torch.as_tensor(self.reward_scaler.rms.count, dtype=torch.float64)
        out["reward_ret"] = torch.from_numpy(self.reward_scaler.ret.copy())
        out.update({f"method.{k}": v for k, v in self.adversary.state_tensors().items()})
        return out

    def state_meta(self) -> dict[str, Any]:
        """Agent spec, config, counters, Adam groups, recent episodes, env time limits."""
        return {**self.run_state_meta(),
                "optimizer_param_groups": self.optimizer.state_dict()["param_groups"]}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str) -> None:
        """Load a state saved by :meth:`state_tensors` and :meth:`state_meta`.

        Raises:
            CheckpointError: the checkpoint does not fit this learner's config and networks.
        """
        try:
            resumed_episodes = self.restore_run_state(tensors, meta, source)
            load_optimizer(self.optimizer, tensors, "optim.", meta["optimizer_param_groups"])
            self.generator.set_state(tensors["rng.torch"])
            if "rng.adversary" in tensors:  # checkpoints of runs before robust training lack it
                self.adversary.generator.set_state(tensors["rng.adversary"])
            self.adversary.restore({k[len("method."):]: v for k, v in tensors.items()
                                    if k.startswith("method.")})
            rms = self.reward_scaler.rms
            rms.mean = tensors["reward_rms.mean"].numpy().copy()
            rms.var = tensors["reward_rms.var"].numpy().copy()
            rms.count = float(tensors["reward_rms.count"])
            self.reward_scaler.ret = tensors["reward_ret"].numpy().copy()
            if not resumed_episodes:  # fresh episodes: their discounted returns start at 0
                self.reward_scaler.ret[:] = 0.0
        except (KeyError, ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(
                f"{source} does not fit this run's config (env {self.cfg.env}, "
                f"{self.cfg.ppo.num_envs} envs): {type(exc).__name__}: {str(exc).splitlines()[0]}. "
                f"Resume with the config the run was started with."
            ) from None
