"""Objectives over perturbed observations, for the solvers of :mod:`robustpo.perturb`.

Each returns a function ``s' -> (batch,)`` to be *maximised*. Observations are normalised.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .agent import Agent


def action_difference(agent: Agent, clean: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``sum(((mu(s') - mu(s)) / sigma)^2)`` per sample: twice the KL divergence between the
    policy's Gaussians at ``s`` and ``s'`` (their std is state-independent). The MAD attack's
    objective and SA-PPO's regulariser (Zhang et al. 2020)."""
    with torch.no_grad():
        clean_mean = agent.actor(clean)
        inv_std = torch.exp(-agent.actor.log_std)

    def objective(perturbed: torch.Tensor) -> torch.Tensor:
        z = (agent.actor(perturbed) - clean_mean) * inv_std
        return (z * z).sum(-1)

    return objective


def negative_value(agent: Agent) -> Callable[[torch.Tensor], torch.Tensor]:
    """``-V(s')``: maximising it finds states the critic values least (the Critic attack)."""

    def objective(perturbed: torch.Tensor) -> torch.Tensor:
        return -agent.critic(perturbed)

    return objective
