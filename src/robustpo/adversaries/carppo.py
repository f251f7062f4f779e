"""CAR-PPO (Li et al. 2024, CAR-RL code; ARPO of the BARPO paper; REFERENCE section 3).

``s*`` maximises ``L_i`` (PGD from a uniform random start, or SGLD); the loss is
``kappa * mean_i L_i(s_i) + car_reg * sum_i w_i L_i(s*_i)`` with
``w = softmax(L(s*) / car_lambda)`` held fixed. ``kappa = 1`` is CAR-RL's released
configuration (``ROBUST_ADD_CLEAN_LOSS``) and the BARPO paper's "ARPO with guidance";
``kappa = 0`` is ARPO (CAR-RL then drops ``car_reg`` too, which changes the loss scale only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config.sections import MethodConfig, setting
from ..core.nets import GaussianActor
from ..core.objectives import SurrogateLoss
from ..core.perturb import Objective
from ..core.surrogate import Surrogate
from .base import GradientSum, Minibatch, RobustAdversary, register
from .std_grad import PerturbedSurrogateConfig


@dataclass
class CARPPOConfig(PerturbedSurrogateConfig):
    """CAR-PPO's section."""

    nonnegative_fields: ClassVar[tuple[str, ...]] = ("sgld_beta", "kappa", "car_reg")
    positive_fields: ClassVar[tuple[str, ...]] = ("inner_steps", "car_lambda")

    inner_solver: str = setting("pgd", "inner solver: pgd (CAR-RL's PGD configs, uniform "
                                "random start) or sgld")
    kappa: float = setting(1.0, "weight of the clean PPO loss (SPO guidance; CAR-RL "
                           "ROBUST_ADD_CLEAN_LOSS = 1; 0 = ARPO)")
    car_reg: float = setting(0.3, "weight of the worst-case surrogate (REFERENCE s3, PGD: "
                             "Hopper 0.3, Walker2d 0.1, HalfCheetah 1.0, Ant 0.3)")
    car_lambda: float = setting(1000.0, "softmax temperature of the worst-case weights "
                                "(REFERENCE s3, PGD: Hopper 1000, Walker2d 100, HalfCheetah "
                                "1000, Ant 1e4)")


def car_weights(per_sample_loss: torch.Tensor, temperature: float) -> torch.Tensor:
    """CAR-PPO's soft worst-case weights ``softmax(L / lambda)`` over a minibatch ``(B,)``:
    they sum to one, favour the samples whose perturbed surrogate loss is largest, and tend
    to uniform as ``lambda`` grows (CAR-RL ``ROBUST_SOFT_LAMBDA``). Held fixed (no gradient)."""
    return torch.softmax(per_sample_loss.detach() / temperature, 0)


@register
class CARPPO(RobustAdversary):
    """CAR-PPO / ARPO: the min-surrogate adversary with soft worst-case weighting."""

    name = "carppo"
    display_name = "CAR-PPO"
    description = "CAR-PPO (= ARPO): min-surrogate PGD adversary, softmax worst-case weights"
    config_class: ClassVar[type[MethodConfig]] = CARPPOConfig
    cfg: CARPPOConfig

    @classmethod
    def variant_tags(cls, cfg: MethodConfig) -> list[str]:
        """"no guidance" for ARPO (kappa 0); "clean-std"."""
        assert isinstance(cfg, CARPPOConfig)
        return (["no guidance"] if cfg.kappa == 0 else []) + cfg.tags()

    def inner_objective(self, actor: GaussianActor, batch: Minibatch, clean: Surrogate
                        ) -> Objective:
        return SurrogateLoss(actor, batch.actions, batch.old_log_probs, batch.adv,
                             self.ppo.clip_eps)

    def inner_value(self, clean: Surrogate, robust: Surrogate) -> torch.Tensor:
        return robust.per_sample.mean()

    def loss(self, actor: GaussianActor, batch: Minibatch, perturbed: torch.Tensor | None
             ) -> torch.Tensor:
        assert perturbed is not None
        clean_mean = actor(batch.obs)
        clean = self.surrogate(actor, batch, clean_mean).mean()
        per_sample = self.surrogate(actor, batch, actor(perturbed),
                                    clean_mean if self.cfg.std_at_clean else None)
        weights = car_weights(per_sample, self.cfg.car_lambda)
        return self.cfg.kappa * clean + self.cfg.car_reg * (weights * per_sample).sum()

    def closed_form(self, actor: GaussianActor, clean: Surrogate, robust: Surrogate | None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert robust is not None
        cfg, w = self.cfg, 1.0 / clean.per_sample.shape[0]
        grads = GradientSum(actor, self.ppo.entropy_coef)
        loss = torch.zeros(())
        if cfg.kappa > 0:
            grads.add_surrogate(clean, cfg.kappa * w)
            loss = cfg.kappa * clean.per_sample.mean()
        if cfg.car_reg > 0 or grads.mean is None:
            weights = car_weights(robust.per_sample, cfg.car_lambda)
            grads.add_surrogate(robust, cfg.car_reg * weights,
                                clean if cfg.std_at_clean else None)
            loss = loss + cfg.car_reg * (weights * robust.per_sample).sum()
        return loss, grads.grads()
