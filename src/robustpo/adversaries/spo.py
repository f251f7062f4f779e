"""SPO: standard PPO, the identity adversary (the BARPO paper's name for PPO)."""

from __future__ import annotations

import torch

from ..core.nets import GaussianActor
from ..core.surrogate import Surrogate
from .base import GradientSum, Minibatch, TrainingAdversary, register, surrogate_at


@register
class SPO(TrainingAdversary):
    """PPO's policy loss ``mean_i L_i(s_i)`` on clean states (Schulman et al. 2017)."""

    name = "ppo"
    display_name = "PPO"
    description = "PPO (= SPO): no adversary"

    def loss(self, actor: GaussianActor, batch: Minibatch, perturbed: torch.Tensor | None
             ) -> torch.Tensor:
        return surrogate_at(batch, actor(batch.obs), actor.log_std, self.ppo.clip_eps).mean()

    def closed_form(self, actor: GaussianActor, clean: Surrogate, robust: Surrogate | None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        grads = GradientSum(actor, self.ppo.entropy_coef)
        grads.add_surrogate(clean, 1.0 / clean.per_sample.shape[0])
        return clean.per_sample.mean(), grads.grads()
