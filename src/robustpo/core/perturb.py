"""The l_inf eps-ball: projection, the run-time membership check, and the solvers that search
the ball (PGD, SGLD, FGSM), shared by attacks and robust training.

Perturbations act on *normalised* observations (REFERENCE section 1). The tolerance of the
membership check is 1e-5, the one used by the public robust-PPO code bases. Every solver
*maximises* a per-sample objective ``f(s') -> (batch,)``; to minimise, pass ``-f``. An
objective with a ``gradient(s') -> (batch, obs_dim)`` method is differentiated by it instead
of by autograd (and one with ``value_and_gradient`` gives both from one pass). Samples
are independent: the gradient of ``f(s').sum()`` with respect to row i is that of ``f_i``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import ActionOutOfBallError, PerturbationOutOfBallError

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

    Raises:
        ValueError: ``eps < 0``.
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


def check_action_in_ball(executed: torch.Tensor, actions: torch.Tensor, eps: float,
                         low: torch.Tensor, high: torch.Tensor, attack: str) -> None:
    """Raise :class:`ActionOutOfBallError` unless every executed action lies within ``eps``
    half-ranges of the victim's action (per dimension) and inside ``[low, high]``; also if
    the shapes differ or a value is not finite.

    Args:
        executed, actions: ``(batch, act_dim)`` in action units; low, high: ``(act_dim,)``.
    """
    if executed.shape != actions.shape:
        raise ActionOutOfBallError(attack, eps, float("inf"))
    if executed.numel() == 0:
        return
    half = (high - low) / 2
    shift = float(((executed - actions).abs() / half).max()) - eps
    outside = float(torch.maximum(low - executed, executed - high).max() / half.min())
    excess = max(shift, outside)
    if not excess <= BALL_TOLERANCE:  # also catches NaN
        raise ActionOutOfBallError(attack, eps, excess)


Objective = Callable[[torch.Tensor], torch.Tensor]


def _grad(objective: Objective, x: torch.Tensor) -> torch.Tensor:
    # Objectives may carry their gradient in closed form (robustpo.core.objectives), which for
    # our small MLPs is several times cheaper than autograd's bookkeeping.
    gradient = getattr(objective, "gradient", None)
    if gradient is not None:
        return gradient(x)
    return _value_and_grad(objective, x)[1]


def _value_and_grad(objective: Objective, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # One forward pass gives both; a closed-form gradient needs its own forward for the value.
    value_and_gradient = getattr(objective, "value_and_gradient", None)
    if value_and_gradient is not None:
        return value_and_gradient(x)
    if getattr(objective, "gradient", None) is not None:
        with torch.no_grad():
            return objective(x), objective.gradient(x)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = objective(x)
        (g,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), g


def _search_region(clean: torch.Tensor, eps: torch.Tensor,
                   box: tuple[torch.Tensor, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ball's faces ``(lo, hi)`` around ``clean``, intersected with ``box``."""
    lo, hi = clean - eps, clean + eps
    if box is not None:
        lo, hi = torch.maximum(lo, box[0]), torch.minimum(hi, box[1])
    return lo, hi


def pgd(
    objective: Objective,
    clean: torch.Tensor,
    eps: float | torch.Tensor,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    start_radius: float | torch.Tensor | None = None,
    box: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Projected gradient ascent with sign steps (Madry et al. 2018) in the l_inf eps-ball,
    intersected with a box when one is given.

    Args:
        objective: maps points ``(batch, dim)`` to per-sample values ``(batch,)`` to maximise.
        clean: the ball's centres ``(batch, dim)``, float32: normalised observations, or
            actions in action units for the action attacks.
        eps: radius, a number or per-coordinate radii broadcasting to ``clean`` (an action
            ball is eps times each dimension's half-range); each of the ``steps`` steps moves
            ``eps / steps`` along the gradient sign (REFERENCE sections 3 and 4: 10 steps of
            eps/10).
        random_start: start from a uniform point of the ball (or of the smaller ball of
            radius ``start_radius``) instead of ``clean``.
        generator: random generator of the start.
        start_radius: radius of the random start (default ``eps``, the whole ball; the
            reference attacks use ``eps / 10``, REFERENCE section 4).
        box: bounds ``(low, high)`` broadcasting to ``clean`` that every point also keeps to
            (the action space); ``clean`` must lie in it.

    Returns:
        Detached points inside the ball (and the box), same shape and dtype as ``clean``.
    """
    eps = torch.as_tensor(eps, dtype=clean.dtype)
    if not eps.any():
        return clean.detach().clone()
    step = eps / steps
    clean = clean.detach()
    lo, hi = _search_region(clean, eps, box)  # computed once for all steps
    x = clean.clone()
    if random_start:
        radius = eps if start_radius is None else torch.minimum(
            torch.as_tensor(start_radius, dtype=clean.dtype), eps)
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
        x = torch.clamp(x + noise * radius, lo, hi)
    for _ in range(steps):
        x = torch.clamp(x + step * _grad(objective, x).sign(), lo, hi)
    return x.detach()


def pgd_best(
    objective: Objective,
    clean: torch.Tensor,
    eps: float | torch.Tensor,
    steps: int,
    box: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD from ``clean`` (no random start) that returns, per sample, the best point it
    evaluated and its value: the start, every iterate and the last point. Sign steps can
    overshoot; keeping the best makes the result at least as good as ``clean`` (never worse
    than no perturbation) at the cost of one forward pass more than :func:`pgd`, since every
    gradient's forward pass also gives the iterate's value.

    Args:
        objective: maps points ``(..., dim)`` to values ``(...)`` to maximise, each value
            depending on its own point only (e.g. twin critics ``(2, B)`` at ``(2, B, dim)``).
        clean, eps, steps, box: as :func:`pgd`.

    Returns:
        ``(points, values)``: detached, shapes ``clean.shape`` and ``clean.shape[:-1]``.
    """
    eps = torch.as_tensor(eps, dtype=clean.dtype)
    clean = clean.detach()
    if not eps.any():
        with torch.no_grad():
            return clean.clone(), objective(clean)
    step = eps / steps
    lo, hi = _search_region(clean, eps, box)
    x = best = clean
    best_value = None
    for _ in range(steps):
        value, g = _value_and_grad(objective, x)
        if best_value is None:
            best_value = value
        else:
            better = value > best_value
            best = torch.where(better.unsqueeze(-1), x, best)
            best_value = torch.where(better, value, best_value)
        x = torch.clamp(x + step * g.sign(), lo, hi)
    with torch.no_grad():
        value = objective(x)
    better = value > best_value
    return (torch.where(better.unsqueeze(-1), x, best).detach(),
            torch.where(better, value, best_value).detach())


def worst_q(q: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], obs: torch.Tensor,
            actions: torch.Tensor, radius: torch.Tensor,
            box: tuple[torch.Tensor, torch.Tensor], steps: int) -> torch.Tensor:
    """``min_delta q(obs, actions + delta)`` over the ball of per-dimension ``radius`` and the
    ``box``: the lowest value ``steps`` PGD sign steps from ``actions`` evaluated (the start
    included, :func:`pgd_best`); ``(B,)``. The OA Bellman operator's inner min (the OA-PI
    framework, arXiv 2507.03372: OA-PPO, and ``min-oa-q``'s learned Q). ``obs`` normalised
    ``(B, obs_dim)``; ``actions`` ``(B, act_dim)``, ``radius`` ``(act_dim,)`` (eps times the
    half-range) and the box's bounds ``(act_dim,)``, all in action units."""
    _, negated = pgd_best(lambda a: -q(obs, a), actions, radius, steps, box=box)
    return -negated


def sgld(
    objective: Objective,
    clean: torch.Tensor,
    eps: float,
    steps: int = 10,
    beta: float = 1e-5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stochastic gradient Langevin dynamics with sign steps in the l_inf eps-ball.

    The SA-PPO solver (Zhang et al. NeurIPS 2020, its public code; REFERENCE section 3): start
    one step of size ``eps / steps`` away from ``clean`` in a random sign direction, then take
    ``steps`` steps ``eps / steps * sign(grad + noise_i)`` with Gaussian noise of scale
    ``sqrt(2 * step * beta) / (i + 2)`` (``beta`` the inverse temperature, shrinking noise),
    projecting onto the ball after each step.

    Args:
        objective, clean: as :func:`pgd`.
        eps: radius, a number (no per-coordinate radii), normalised units.
        steps: sign steps.
        beta: inverse temperature (1e-5: SA_PPO's training default; 1.0: the MAD attack's).
        generator: of the start and the noise.

    Returns:
        detached points in the ball, the shape and dtype of ``clean``.
    """
    if eps == 0:
        return clean.detach().clone()
    step = eps / steps
    scale = math.sqrt(2.0 * step * beta)
    clean = clean.detach()
    lo, hi = clean - eps, clean + eps
    start_noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype) * scale
    x = torch.clamp(clean + start_noise.sign() * step, lo, hi)
    for i in range(steps):
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        direction = (_grad(objective, x) + noise * (scale / (i + 2))).sign()
        x = torch.clamp(x + step * direction, lo, hi)
    return x.detach()


def fgsm(objective: Objective, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step ``eps * sign(grad)``.

    Args:
        objective: ``(batch, dim) -> (batch,)`` to maximise; clean: ``(batch, dim)``, e.g.
            normalised observations; eps: a number, in ``clean``'s units.

    Returns:
        detached points of ``clean``'s shape and dtype; coordinates with zero gradient stay.
    """
    if eps == 0:
        return clean.detach().clone()
    return project_linf(clean + eps * _grad(objective, clean).sign(), clean, eps).detach()
