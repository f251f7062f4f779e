"""Gradient attacks on the victim's own networks (REFERENCE section 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..core.objectives import PolicyKL, negative_value
from ..core.perturb import pgd, sgld
from .base import ObservationAttack, register

if TYPE_CHECKING:
    from ..agents.agent import Agent

STEPS = 10  # REFERENCE section 4: 10 steps of size eps/10


@register
class CriticAttack(ObservationAttack):
    """PGD from a random start minimising the victim's value V(s') (Pattanaik et al. 2018, as
    in the SA_PPO code base)."""

    name = "critic"
    description = "PGD minimising the agent's value V(s')"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        return pgd(negative_value(agent.critic), obs, eps, STEPS, random_start=True,
                   generator=self.generator)


@register
class MADAttack(ObservationAttack):
    """Maximal action difference: SGLD maximising the policy's KL between s and s',
    ``0.5 * sum(((mu(s') - mu(s)) / sigma)^2)`` (Zhang et al. NeurIPS 2020)."""

    name = "mad"
    description = "SGLD maximising the sigma-scaled action-mean difference"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        with torch.no_grad():
            clean_mean = agent.actor(obs)
        return sgld(PolicyKL(agent.actor, clean_mean), obs, eps, STEPS, generator=self.generator)
