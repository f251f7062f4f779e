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
START = 0.1  # the reference PGD's random start: uniform in +-eps/10 (ATLA agent.py)
MAD_BETA = 1.0  # the reference MAD's SGLD inverse temperature: noise sqrt(2 step) / (i + 2)


@register
class CriticAttack(ObservationAttack):
    """PGD from a random start in +-eps/10 minimising the victim's value V(s') (Pattanaik et
    al. 2018, as in the SA_PPO and ATLA code bases)."""

    name = "critic"
    description = "PGD minimising the agent's value V(s')"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        return pgd(negative_value(agent.critic), obs, eps, STEPS, random_start=True,
                   generator=self.generator, start_radius=START * eps)


@register
class MADAttack(ObservationAttack):
    """Maximal action difference (Zhang et al. NeurIPS 2020): SGLD maximising
    ``sum(((mu(s') - mu(s)) / sigma')^2)`` with the reference's details (REFERENCE section 4):
    sigma' = sigma / mean(sigma), inverse temperature 1."""

    name = "mad"
    description = "SGLD maximising the sigma-scaled action-mean difference"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        with torch.no_grad():
            clean_mean = agent.actor(obs)
            sigma = agent.actor.log_std.exp()
            scaled = sigma / sigma.mean()
        # PolicyKL is half the squared difference: twice 1 / sigma'^2 makes it the whole.
        objective = PolicyKL(agent.actor, clean_mean, inv_var=2.0 / (scaled * scaled))
        return sgld(objective, obs, eps, STEPS, MAD_BETA, generator=self.generator)
