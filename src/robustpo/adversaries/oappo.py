"""OA-PPO: PPO whose advantages mix in an optimal-adversary-aware advantage (the OA-PI
framework, arXiv 2507.03372; REFERENCE section 5): ``A_mix = (1 - omega) A + omega A_adv``.

How ``A_adv`` is built for a Gaussian policy (the paper's construction is not available to
us; docs/action-robustness.md):

- **Which critic.** An OA action-value critic Q_adv(s, a) (the agent's ``q_adv`` module, a
  tanh MLP of the policy's size on the normalised observation and the executed action, so
  that ``min-oa-q`` attacks an OA-PPO agent with it). PPO's V(s) cannot be used: the
  adversary acts on the action, and only a Q of actions sees its effect.
- **What is learned from the rollout.** After each rollout, Q_adv regresses (the value
  network's epochs, minibatches and learning rate) on the OA Bellman target of the policy
  actually run, ``r_t + gamma * c_t * min_{delta} Q_adv'(s_{t+1}, a_{t+1} + delta)``: the
  scaled reward, the next action the policy took in the same episode (its mean action at a
  truncation or the rollout's end), and Q_adv' the critic as it was before this rollout.
- **Where PGD acts.** On actions: ``delta`` in the ball of ``eps`` half-ranges (and the
  action space), K sign steps from the action itself; the minimum is the lowest value
  PGD evaluated, the start included (as OA-TD3's target).
- **The advantage.** GAE (the rollout's gamma and lambda, or ``oa_gae_lambda``; its episode
  ends) on the TD errors of the OA state value ``V_adv(s) = min_delta Q_adv(s, mu(s) +
  delta)``, the value of the policy's mean action under the worst perturbation: ``delta_t =
  r_t + gamma * c_t * V_adv(s_{t+1}) - V_adv(s_t)`` (the final state's value at a
  truncation). It rates an action by the worst-case value of where it leads, as the OA
  Bellman operator rates the next state, and it is a sum of TD errors like PPO's own
  advantage, so the two mix on the same scale and with the same noise. Computed with Q_adv
  as it was before this rollout's regression, as PPO's advantages use V before its update.
  (An advantage that is a function of the sampled action alone, such as ``min_delta Q_adv(s,
  a + delta) - V_adv(s)``, carries no return noise: mixed at omega 0.5 it moved the policy
  so far per update that PPO's KL diverged within 100 iterations on Hopper-v5 for all three
  seeds tried; ``oa_gae_lambda`` 0, TD(0) on V_adv, lowered both natural and worst-case
  returns, docs/action-robustness.md.)

With omega = 0 the advantages are GAE's and OA-PPO is PPO bit for bit (the OA critic still
learns, from its own random stream, so the agent carries it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..config.sections import MethodConfig, setting
from ..core.gae import compute_gae
from ..core.nets import ActionValueNet
from ..core.optim import adam, load_optimizer, optimizer_tensors
from ..core.perturb import worst_q
from ..errors import ConfigError
from .base import register
from .oatd3 import OAConfig
from .spo import SPO

if TYPE_CHECKING:
    from ..agents.agent import Agent


@dataclass
class OAPPOConfig(OAConfig):
    """OA-PPO's section: the OA critic, the advantage's weight and its GAE lambda."""

    oa_gae_lambda: float | None = setting(None, "GAE lambda of the OA advantage; null: PPO's "
                                          "gae_lambda. 0 rates an action by r + gamma * "
                                          "V_adv(s') alone, as OA-TD3's actor rates it by "
                                          "Q_adv; PPO's 0.95 weighs in the rollout's own, "
                                          "unperturbed rewards")

    def validate(self) -> None:
        super().validate()
        if self.oa_gae_lambda is not None and not 0.0 <= self.oa_gae_lambda <= 1.0:
            raise ConfigError(f"Config key 'method.oa_gae_lambda' must lie in [0, 1] or be "
                              f"null, got {self.oa_gae_lambda}.")


@register
class OAPPO(SPO):
    """OA-PPO (module docstring): SPO's loss on the mixed advantages."""

    name = "oa-ppo"
    display_name = "OA-PPO"
    description = "OA-PPO: PPO with advantages mixed with an OA-aware critic's (PGD on actions)"
    config_class = OAPPOConfig
    metric_names: ClassVar[tuple[str, ...]] = ("oa_critic_loss", "oa_advantage_std")
    cfg: OAPPOConfig

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        omega, lam = getattr(cfg, "omega", 0.5), getattr(cfg, "oa_gae_lambda", None)
        return ([] if omega == 0.5 else [f"omega {omega:g}"]) + (
            [] if lam is None else [f"OA lambda {lam:g}"])

    def build(self, agent: Agent) -> None:
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        with torch.random.fork_rng():  # the agent's initialisation stays PPO's
            torch.manual_seed(seed)
            self.critic = ActionValueNet(agent.obs_dim, agent.act_dim, self.ppo.hidden)
        agent.modules["q_adv"] = self.critic
        self.optimizer = adam(self.critic.parameters(), lr=self.ppo.value_lr,
                              eps=self.ppo.adam_eps)
        self.low = torch.as_tensor(agent.action_low)
        self.high = torch.as_tensor(agent.action_high)
        self.radius = self.cfg.eps * (self.high - self.low) / 2
        self.last: dict[str, float] = {}

    def _fit(self, obs: torch.Tensor, actions: torch.Tensor, target: torch.Tensor) -> float:
        """The value network's epochs of minibatches of regression on ``target``."""
        n, losses = obs.shape[0], []
        for _ in range(self.ppo.epochs):
            for rows in torch.randperm(n, generator=self.generator).tensor_split(
                    self.ppo.minibatches):
                loss = (self.critic(obs[rows], actions[rows]) - target[rows]).square().mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
        return float(torch.stack(losses).mean())

    def rollout_advantages(self, rollout: Any, agent: Agent) -> torch.Tensor:
        """``A_mix = (1 - omega) A + omega A_adv``, ``(T, num_envs)`` (module docstring; the
        OA-PI framework, arXiv 2507.03372). A_adv is GAE over V_adv(s) = min_delta Q_adv(s,
        mu(s) + delta) with Q_adv as it was before this rollout; Q_adv is then regressed on
        the rollout's OA Bellman targets (a training step of the OA critic). omega 0 returns
        GAE's advantages unchanged."""
        flat, box, k = rollout.flat(), (self.low, self.high), self.cfg.pgd_steps

        def clip(a: torch.Tensor) -> torch.Tensor:
            return torch.clamp(a, self.low, self.high)

        frozen = copy.deepcopy(self.critic).requires_grad_(False)  # Q_adv before this rollout

        def oa_value(obs: torch.Tensor) -> torch.Tensor:
            """V_adv(s) = min_delta Q_adv(s, mu(s) + delta), shape (T * num_envs,)."""
            with torch.no_grad():
                mean_actions = clip(agent.actor(obs))
            return worst_q(frozen, obs, mean_actions, self.radius, box, k)

        # next_obs is obs shifted by one step except at truncations (the final state) and at
        # the rollout's last step, so V_adv is computed once per distinct state.
        steps, envs = rollout.rewards.shape
        elsewhere = rollout.ends.bool() & rollout.continues.bool()
        elsewhere[-1] = True
        values = oa_value(torch.cat([flat.obs, rollout.next_obs[elsewhere]]))
        value = values[: steps * envs].view(steps, envs)
        next_value = torch.cat([value[1:], value.new_zeros(1, envs)])
        next_value[elsewhere] = values[steps * envs:]
        lam = self.ppo.gae_lambda if self.cfg.oa_gae_lambda is None else self.cfg.oa_gae_lambda
        adv_oa, _ = compute_gae(rollout.rewards, value, rollout.continues * next_value,
                                rollout.ends, self.ppo.gamma, lam)
        target = flat.rewards + self.ppo.gamma * flat.continues * worst_q(
            frozen, flat.next_obs, clip(flat.next_actions), self.radius, box, k)
        loss = self._fit(flat.obs, clip(flat.actions), target)
        self.last = {"oa_critic_loss": loss, "oa_advantage_std": float(adv_oa.std())}
        if self.cfg.omega == 0.0:
            return rollout.advantages
        return (1 - self.cfg.omega) * rollout.advantages + self.cfg.omega * adv_oa

    def iteration_metrics(self, eps: float) -> dict[str, float]:
        return dict(self.last)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return optimizer_tensors(self.optimizer, "optim.")

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        load_optimizer(self.optimizer, tensors, "optim.")
