"""The plug-in interface of the TD3 family (TD3, and the action-robust methods built on it:
PR-/NR-MDP adversaries, OA-TD3's adversary-aware critic).

A method of this family changes one or more of three things of the TD3 learner
(:mod:`robustpo.learners.td3`): the action executed while exploring
(:meth:`OffPolicyMethod.explore`), the critics' target (:meth:`OffPolicyMethod.target`) and
the actor's gradient (:meth:`OffPolicyMethod.actor_loss`, or
:meth:`OffPolicyMethod.actor_gradients` for a gradient that is not one loss's); it may own
networks and optimisers (:meth:`OffPolicyMethod.build`, :meth:`OffPolicyMethod.after_critic_update`,
:meth:`OffPolicyMethod.after_actor_update`, :meth:`OffPolicyMethod.state_tensors`), and add
modules to the agent. The defaults are TD3's (Fujimoto, van Hoof, Meger, ICML 2018,
Algorithm 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..config.sections import MethodConfig, TD3Config
from ..core.nets import DeterministicActor, TwinQ
from ..core.replay import Transitions
from .base import Method

if TYPE_CHECKING:
    from ..agents.agent import Agent


@dataclass
class TD3Networks:
    """The learner's networks a method may use: the actor mu, the twin critics, their target
    copies, the action bounds ``(act_dim,)`` in action units and their half-range."""

    actor: DeterministicActor
    critics: TwinQ
    actor_target: DeterministicActor
    critics_target: TwinQ
    low: torch.Tensor
    high: torch.Tensor
    half_range: torch.Tensor = field(init=False)  # the unit of noise scales and eps

    def __post_init__(self) -> None:
        self.half_range = (self.high - self.low) / 2


def smoothed_target_actions(actor: DeterministicActor, nets: TD3Networks, next_obs: torch.Tensor,
                            td3: TD3Config, generator: torch.Generator) -> torch.Tensor:
    """TD3's target policy smoothing: ``clip(actor(s') + clip(N(0, sigma~), -c, c), low,
    high)``, noise in units of the half-range; ``(B, act_dim)``."""
    action = actor(next_obs)
    noise = torch.randn(action.shape, generator=generator).mul_(td3.target_noise)
    noise = noise.clamp_(-td3.target_noise_clip, td3.target_noise_clip).mul_(nets.half_range)
    return torch.clamp(action + noise, nets.low, nets.high)


class OffPolicyMethod(Method):
    """Base class of the TD3 family's methods; as it stands, TD3 itself.

    Args:
        cfg: the method's section; td3: the learner's recipe; attack_eps: the task's eps.
        generator: the method's own random stream (separate from the learner's, so that a
            method that reduces to TD3 consumes the learner's stream exactly as TD3).
    """

    learner = "td3"

    def __init__(self, cfg: MethodConfig, td3: TD3Config, attack_eps: float,
                 generator: torch.Generator) -> None:
        self.cfg, self.td3, self.attack_eps, self.generator = cfg, td3, attack_eps, generator

    def build(self, nets: TD3Networks, agent: Agent) -> None:
        """Create the method's own networks once the learner's exist (TD3: none); modules
        added to ``agent.modules`` are saved with the agent."""

    def explore(self, obs: torch.Tensor, actions: torch.Tensor, nets: TD3Networks
                ) -> torch.Tensor:
        """The actions executed while learning, given the agent's noisy ones ``(n, act_dim)``
        for normalised observations ``obs`` (TD3: the agent's)."""
        return actions

    @torch.no_grad()
    def target(self, nets: TD3Networks, batch: Transitions, generator: torch.Generator
               ) -> torch.Tensor:
        """The critics' regression target ``(B,)``: TD3's clipped double-Q target
        ``r + gamma * not_done * min_i Q'_i(s', a~)`` with smoothed target actions a~."""
        next_actions = smoothed_target_actions(nets.actor_target, nets, batch.next_obs,
                                               self.td3, generator)
        next_q = nets.critics_target(batch.next_obs, next_actions).min(0).values
        return batch.rewards + self.td3.gamma * batch.not_done * next_q

    def actor_loss(self, nets: TD3Networks, obs: torch.Tensor) -> torch.Tensor:
        """The actor's loss on normalised observations ``(B, obs_dim)``: TD3's
        ``-mean Q_1(s, mu(s))``."""
        return -nets.critics.q1(obs, nets.actor(obs)).mean()

    def actor_gradients(self, nets: TD3Networks, obs: torch.Tensor
                        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The actor's loss and its gradient in the order of ``actor.parameters()``: by
        default autograd's of :meth:`actor_loss` (no gradient reaches the critics)."""
        loss = self.actor_loss(nets, obs)
        return loss, list(torch.autograd.grad(loss, list(nets.actor.parameters())))

    def after_critic_update(self, nets: TD3Networks, batch: Transitions) -> None:
        """Called after each critic update (a method's own critics learn here)."""

    def after_actor_update(self, nets: TD3Networks, batch: Transitions) -> None:
        """Called after each delayed actor update (a learned adversary's own update)."""

    def metrics(self) -> dict[str, float]:
        """The method's metrics of the last iteration (``metric_names``)."""
        return {}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The method's training state (networks, optimisers), for checkpoints."""
        return {}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Load :meth:`state_tensors`' output."""
