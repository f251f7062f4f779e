"""The two attacks that need no optimisation: none and uniform random noise."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .base import ObservationAttack, register

if TYPE_CHECKING:
    from ..agents.agent import Agent


@register
class NoAttack(ObservationAttack):
    """The identity: evaluation on clean observations gives the *natural return*."""

    name = "none"
    description = "no perturbation (natural return)"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        return obs


@register
class RandomAttack(ObservationAttack):
    """Uniform noise in [-eps, eps] on every normalised coordinate (REFERENCE section 4)."""

    name = "random"
    description = "uniform noise in the eps-ball"

    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        noise = torch.rand(obs.shape, generator=self.generator) * (2.0 * eps) - eps
        return obs + noise
