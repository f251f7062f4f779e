"""Diagonal Gaussian policies with a state-independent sigma: the log-density and the
sigma-scaled KL between two means. The one implementation of each, used by the PPO surrogate,
the training adversaries and the attacks.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(
    mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor,
    inv_std: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-density of ``actions`` under N(mean, diag(exp(log_std))^2) and the standardised
    actions ``z = (a - mean) / sigma``.

    Args:
        mean: ``(batch, act_dim)`` float32.
        log_std: ``(act_dim,)``, the same for every state.
        actions: ``(batch, act_dim)``, in the policy's (unclipped) action units.
        inv_std: ``exp(-log_std)`` when the caller has it already (saves an exp).

    Returns:
        ``(log_prob, z)`` of shapes ``(batch,)`` and ``(batch, act_dim)``;
        ``log_prob = -0.5 |z|^2 - sum(log_std) - 0.5 act_dim log(2 pi)``.
    """
    inv_std = torch.exp(-log_std) if inv_std is None else inv_std
    z = (actions - mean) * inv_std
    log_prob = -0.5 * (z * z).sum(-1) - log_std.sum() - 0.5 * LOG_2PI * mean.shape[-1]
    return log_prob, z


def mean_shift_kl(mean: torch.Tensor, ref_mean: torch.Tensor, inv_var: torch.Tensor
                  ) -> torch.Tensor:
    """``KL(N(ref_mean, sigma^2) || N(mean, sigma^2)) = 0.5 * sum((mean - ref_mean)^2 / sigma^2)``
    per sample, ``(batch,)``: the KL between two Gaussians of the same sigma (so the policy's
    KL between a clean state and a perturbed one, its sigma being state-independent).

    Args:
        mean, ref_mean: ``(batch, act_dim)``.
        inv_var: ``1 / sigma^2``, ``(act_dim,)``.
    """
    d = mean - ref_mean
    return 0.5 * (d * d * inv_var).sum(-1)


def mean_shift_kl_grad(mean: torch.Tensor, ref_mean: torch.Tensor, inv_var: torch.Tensor
                       ) -> torch.Tensor:
    """d :func:`mean_shift_kl` / d mean, ``(batch, act_dim)``: ``(mean - ref_mean) / sigma^2``."""
    return (mean - ref_mean) * inv_var
