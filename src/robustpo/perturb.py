"""The l_inf eps-ball: projection and the run-time check every attack passes through.

Perturbations act on *normalised* observations (REFERENCE section 1). The tolerance of the
membership check is 1e-5, the one used by the public robust-PPO code bases.
"""

from __future__ import annotations

import torch

from .errors import PerturbationOutOfBallError

BALL_TOLERANCE = 1e-5


def project_linf(perturbed: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Project ``perturbed`` onto the l_inf ball of radius ``eps`` around ``clean``.

    Args:
        perturbed: candidate observations, shape ``(batch, obs_dim)``.
        clean: clean normalised observations, same shape.
        eps: radius, >= 0, in normalised units.

    Returns:
        ``clamp(perturbed, clean - eps, clean + eps)``: the closest point of the ball in every
        l_p norm, since the ball is a box. Points already inside are returned unchanged.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return torch.clamp(perturbed, clean - eps, clean + eps)


def linf_distance(perturbed: torch.Tensor, clean: torch.Tensor) -> float:
    """Largest absolute coordinate difference over the whole batch (0.0 for empty input)."""
    if perturbed.numel() == 0:
        return 0.0
    return float((perturbed - clean).abs().max())


def check_in_ball(perturbed: torch.Tensor, clean: torch.Tensor, eps: float, attack: str) -> None:
    """Raise :class:`PerturbationOutOfBallError` unless every row lies in the eps-ball.

    Also raises if the shapes differ or a perturbed value is not finite.
    """
    if perturbed.shape != clean.shape:
        raise PerturbationOutOfBallError(attack, eps, float("inf"))
    dist = linf_distance(perturbed, clean)
    if not dist <= eps + BALL_TOLERANCE:  # also catches NaN
        raise PerturbationOutOfBallError(attack, eps, dist)
