"""PR-MDP and NR-MDP on TD3 (Tessler, Efroni, Mannor, ICML 2019, "Action Robust
Reinforcement Learning and Applications in Continuous Control"; REFERENCE section 5).

A learned adversary policy nu (a deterministic actor like the agent's mu) takes part in acting:

- **PR-MDP** (probabilistic): with probability alpha the executed action is nu(s) instead of
  mu(s). Critic target ``r + gamma * [(1 - alpha) Q'(s', mu'(s')) + alpha Q'(s', nu'(s'))]``;
  actor loss ``-(1 - alpha) Q(s, mu(s))``; adversary loss ``alpha Q(s, nu(s))``.
- **NR-MDP** (noisy): the executed action is ``(1 - alpha) mu(s) + alpha nu(s)``. Critic
  target ``r + gamma Q'(s', (1 - alpha) mu'(s') + alpha nu'(s'))``; actor loss ``-Q(s, (1 -
  alpha) mu(s) + alpha nu(s))`` with nu fixed; adversary loss ``Q(s, (1 - alpha) mu(s) +
  alpha nu(s))`` with mu fixed.

On TD3 every Q' above is the smaller twin at a smoothed target action (each of mu' and nu'
gets its own clipped smoothing noise) and every Q is Q_1. Where the public code (DDPG,
github tesslerc/ActionRobustRL) differs, the paper is followed: its actor and adversary losses
evaluate the actions of the *next* states against the critic at the current states, and NR's
losses mix in target networks; here both use the current state and the current networks.
The public code replaces one actor update in 11 by an adversary update; here the adversary
steps *in addition* to every ``adversary_every``-th actor update, so that alpha = 0 is TD3 bit
for bit (the adversary's gradient is then zero for PR, and it never acts). Adversary actions
are executed without exploration noise, as in the public code.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..config.sections import MethodConfig, check_positive, setting
from ..core.nets import DeterministicActor
from ..core.optim import adam, load_optimizer, optimizer_tensors, polyak_update
from ..core.replay import Transitions
from ..errors import ConfigError
from .base import register

if TYPE_CHECKING:
    from ..agents.agent import Agent
from .offpolicy import OffPolicyMethod, TD3Networks, smoothed_target_actions


@dataclass
class ActionAdversaryConfig(MethodConfig):
    """PR-/NR-MDP's adversary (Tessler et al. 2019; REFERENCE section 5)."""

    alpha: float = setting(0.1, "the adversary's share: PR's probability of acting, NR's "
                           "weight in the executed action (Tessler et al.: 0.1)")
    adversary_every: int = setting(10, "actor updates per adversary update (the public "
                                   "code's --ratio 10)")
    adversary_lr: float = setting(3e-4, "Adam learning rate of the adversary (TD3's actor rate; "
                                  "the public code uses its actor's, 1e-4)")

    def validate(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"Config key 'method.alpha' must lie in [0, 1], got {self.alpha}.")
        check_positive(self, ["adversary_every", "adversary_lr"], "method")


class ActionAdversaryMethod(OffPolicyMethod, ABC):
    """What PR- and NR-MDP share: the adversary nu, its target, optimiser and schedule."""

    config_class = ActionAdversaryConfig
    metric_names: ClassVar[tuple[str, ...]] = ("adversary_loss",)
    cfg: ActionAdversaryConfig

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        alpha = getattr(cfg, "alpha", 0.1)
        return [] if alpha == 0.1 else [f"alpha {alpha:g}"]

    def build(self, nets: TD3Networks, agent: Agent) -> None:
        actor = nets.actor
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        with torch.random.fork_rng():  # the agent's initialisation stays TD3's
            torch.manual_seed(seed)
            self.adversary = DeterministicActor(actor.obs_dim, actor.act_dim, actor.hidden,
                                                nets.low.tolist(), nets.high.tolist(),
                                                actor.hidden_dtype)
        self.adversary_target = copy.deepcopy(self.adversary).requires_grad_(False)
        self.optimizer = adam(self.adversary.parameters(), lr=self.cfg.adversary_lr)
        self.actor_updates = 0
        self.losses: list[torch.Tensor] = []

    @abstractmethod
    def adversary_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        """The adversary's loss on normalised observations (it minimises the agent's Q)."""

    def after_actor_update(self, nets: TD3Networks, batch: Transitions) -> None:
        """Every ``adversary_every``-th actor update: an adversary step; every actor update:
        the Polyak update of the adversary's target."""
        self.actor_updates += 1
        if self.actor_updates % self.cfg.adversary_every == 0:
            loss = self.adversary_loss(nets, batch.obs)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(self.adversary.parameters()))
            self.optimizer.step()
            self.losses.append(loss.detach())
        polyak_update(self.adversary_target, self.adversary, self.td3.tau)

    def metrics(self) -> dict[str, float]:
        out = {"adversary_loss": float(torch.stack(self.losses).mean()) if self.losses else ""}
        self.losses = []
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"adversary.{k}": v for k, v in self.adversary.state_dict().items()}
        out.update({f"adversary_target.{k}": v
                    for k, v in self.adversary_target.state_dict().items()})
        out.update(optimizer_tensors(self.optimizer, "optim."))
        out["actor_updates"] = torch.tensor(self.actor_updates)
        return out

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for prefix, module in (("adversary.", self.adversary),
                               ("adversary_target.", self.adversary_target)):
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                    if k.startswith(prefix)})
        load_optimizer(self.optimizer, tensors, "optim.")
        self.actor_updates = int(tensors["actor_updates"])


@register
class PRMDP(ActionAdversaryMethod):
    """PR-MDP on TD3 (module docstring)."""

    name = "pr-td3"
    display_name = "PR-TD3"
    description = "PR-MDP on TD3: a learned adversary acts instead with probability alpha"

    def explore(self, obs: torch.Tensor, actions: torch.Tensor, nets: TD3Networks
                ) -> torch.Tensor:
        coin = torch.rand(actions.shape[0], generator=self.generator) < self.cfg.alpha
        if not coin.any():
            return actions
        adversary = torch.clamp(self.adversary(obs), nets.low, nets.high)
        return torch.where(coin[:, None], adversary, actions)

    @torch.no_grad()
    def target(self, nets: TD3Networks, batch: Transitions, generator: torch.Generator
               ) -> torch.Tensor:
        alpha = self.cfg.alpha
        agent = smoothed_target_actions(nets.actor_target, nets, batch.next_obs, self.td3,
                                        generator)
        agent_q = nets.critics_target(batch.next_obs, agent).min(0).values
        adversary = smoothed_target_actions(self.adversary_target, nets, batch.next_obs,
                                            self.td3, self.generator)
        adversary_q = nets.critics_target(batch.next_obs, adversary).min(0).values
        next_q = (1 - alpha) * agent_q + alpha * adversary_q
        return batch.rewards + self.td3.gamma * batch.not_done * next_q

    def actor_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        return -((1 - self.cfg.alpha) * nets.critics.q1(obs, nets.actor(obs))).mean()

    def adversary_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        return (self.cfg.alpha * nets.critics.q1(obs, self.adversary(obs))).mean()


@register
class NRMDP(ActionAdversaryMethod):
    """NR-MDP on TD3 (module docstring)."""

    name = "nr-td3"
    display_name = "NR-TD3"
    description = "NR-MDP on TD3: executed action (1 - alpha) mu + alpha * learned adversary"

    def mix(self, agent: torch.Tensor, adversary: torch.Tensor) -> torch.Tensor:
        """``(1 - alpha) * agent + alpha * adversary``."""
        return (1 - self.cfg.alpha) * agent + self.cfg.alpha * adversary

    def explore(self, obs: torch.Tensor, actions: torch.Tensor, nets: TD3Networks
                ) -> torch.Tensor:
        with torch.no_grad():
            adversary = torch.clamp(self.adversary(obs), nets.low, nets.high)
        return self.mix(actions, adversary)

    @torch.no_grad()
    def target(self, nets: TD3Networks, batch: Transitions, generator: torch.Generator
               ) -> torch.Tensor:
        agent = smoothed_target_actions(nets.actor_target, nets, batch.next_obs, self.td3,
                                        generator)
        adversary = smoothed_target_actions(self.adversary_target, nets, batch.next_obs,
                                            self.td3, self.generator)
        next_q = nets.critics_target(batch.next_obs, self.mix(agent, adversary)).min(0).values
        return batch.rewards + self.td3.gamma * batch.not_done * next_q

    def actor_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            adversary = self.adversary(obs)
        return -nets.critics.q1(obs, self.mix(nets.actor(obs), adversary)).mean()

    def adversary_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            agent = nets.actor(obs)
        return nets.critics.q1(obs, self.mix(agent, self.adversary(obs))).mean()
