"""BAR-PPO (Li et al., ICLR 2026, section 4; REFERENCE section 2): the bilevel method with a
weakened inner adversary and SPO guidance.

``s*`` maximises ``KL(pi(.|s) || pi(.|s'))`` by SGLD (the weaker max-KL inner problem instead
of ARPO's min-surrogate one); the loss is ``mean_i L_i(s*_i) + kappa * mean_i L_i(s_i)``, the
inner solution held fixed (no second-order terms). ``kappa = 0`` is BARPO without guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config.sections import MethodConfig, setting
from ..core.nets import GaussianActor
from ..core.surrogate import Surrogate
from .base import GradientSum, MaxKLAdversary, Minibatch, register
from .std_grad import PerturbedSurrogateConfig


@dataclass
class BARPPOConfig(PerturbedSurrogateConfig):
    """BAR-PPO's section."""

    nonnegative_fields: ClassVar[tuple[str, ...]] = ("sgld_beta", "kappa")

    kappa: float = setting(0.3, "weight of the clean surrogate (SPO guidance); chosen by "
                           "robustpo's kappa search on Hopper-v5 (docs/experiments/), the "
                           "paper's values are not public")


@register
class BARPPO(MaxKLAdversary):
    """BAR-PPO: PPO on SGLD max-KL perturbed states plus kappa times the clean surrogate."""

    name = "barppo"
    display_name = "BAR-PPO"
    description = "BAR-PPO: max-KL SGLD adversary + kappa * clean surrogate (SPO guidance)"
    config_class: ClassVar[type[MethodConfig]] = BARPPOConfig
    cfg: BARPPOConfig

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        """"no guidance" (kappa 0) or the kappa, so that a kappa search's agents are grouped
        apart; "clean-std"."""
        assert isinstance(cfg, BARPPOConfig)
        return ["no guidance" if cfg.kappa == 0 else f"kappa {cfg.kappa:g}", *cfg.tags()]

    def loss(self, actor: GaussianActor, batch: Minibatch, perturbed: torch.Tensor | None
             ) -> torch.Tensor:
        assert perturbed is not None
        clean_mean = actor(batch.obs)
        clean = self.surrogate(actor, batch, clean_mean).mean()
        robust = self.surrogate(actor, batch, actor(perturbed),
                                clean_mean if self.cfg.std_at_clean else None)
        return robust.mean() + self.cfg.kappa * clean

    def closed_form(self, actor: GaussianActor, clean: Surrogate, robust: Surrogate | None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert robust is not None
        w = 1.0 / clean.per_sample.shape[0]
        grads = GradientSum(actor, self.ppo.entropy_coef)
        grads.add_surrogate(robust, w, clean if self.cfg.std_at_clean else None)
        loss = robust.per_sample.mean()
        if self.cfg.kappa > 0:
            grads.add_surrogate(clean, self.cfg.kappa * w)
            loss = loss + self.cfg.kappa * clean.per_sample.mean()
        return loss, grads.grads()
