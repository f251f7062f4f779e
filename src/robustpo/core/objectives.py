"""Objectives over perturbed observations, for the solvers of :mod:`robustpo.core.perturb`.

Each is a callable ``s' -> (batch,)`` to be *maximised*, on normalised observations; those with
a ``gradient(s')`` method give their input gradient in closed form (cheaper than autograd for
the small MLPs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .gaussian import mean_shift_kl, mean_shift_kl_grad
from .nets import GaussianActor, TwinQ
from .perturb import pgd_best
from .surrogate import Surrogate, clipped_surrogate


class PolicyKL:
    """Per-sample ``KL(pi(.|s) || pi(.|s')) = 0.5 * sum(((mu(s') - mu(s)) / sigma)^2)`` as a
    function of ``s'`` (sigma is state-independent). SA-PPO's and BAR-PPO's inner problem and
    the MAD attack's objective (Zhang et al. NeurIPS 2020). ``mu(s)`` and sigma are held fixed.

    Args:
        actor: the policy; a Gaussian actor gets the closed-form :meth:`gradient`, any other
            actor (``forward`` and ``log_std``, e.g. a Stable-Baselines3 adapter) autograd.
        clean_mean: ``mu(s)``, ``(B, act_dim)``.
        inv_var: ``1 / sigma^2`` ``(act_dim,)`` to scale by instead of the actor's own (the MAD
            attack's reference scales sigma by its mean).
    """

    def __init__(self, actor: nn.Module, clean_mean: torch.Tensor,
                 inv_var: torch.Tensor | None = None) -> None:
        self.actor = actor
        self.clean_mean = clean_mean.detach()
        self.inv_var = torch.exp(-2.0 * actor.log_std.detach()) if inv_var is None else inv_var
        if isinstance(actor, GaussianActor):
            self.gradient = self._closed_form_gradient

    def __call__(self, perturbed: torch.Tensor) -> torch.Tensor:
        return mean_shift_kl(self.actor(perturbed), self.clean_mean, self.inv_var)

    @torch.no_grad()
    def _closed_form_gradient(self, perturbed: torch.Tensor) -> torch.Tensor:
        """d KL_i / d s'_i, ``(B, obs_dim)``."""
        mean, cache = self.actor.mean_net.forward_cached(perturbed)
        grad_mean = mean_shift_kl_grad(mean, self.clean_mean, self.inv_var)
        return self.actor.mean_net.input_gradient(cache, grad_mean)


class SurrogateLoss:
    """Per-sample negated clipped surrogate ``L_i(s')`` as a function of ``s'``, with its
    gradient in closed form: CAR-PPO's inner objective (maximised: the worst-case surrogate;
    Li et al., arXiv 2502.16734, and their code github RyanHaoranLi/CAR-RL; REFERENCE section
    3). Called on perturbed normalised observations ``(B, obs_dim)``, it returns ``(B,)``.

    Args:
        actor: the Gaussian policy; actions ``(B, act_dim)``; old_log_probs, adv ``(B,)``;
        clip: the surrogate's clipping range.
    """

    def __init__(
        self, actor: GaussianActor, actions: torch.Tensor, old_log_probs: torch.Tensor,
        adv: torch.Tensor, clip: float,
    ) -> None:
        self.actor, self.args = actor, (actions, old_log_probs, adv, clip)

    def __call__(self, perturbed: torch.Tensor) -> torch.Tensor:
        actions, old_log_probs, adv, clip = self.args
        log_probs = self.actor.log_prob(self.actor(perturbed), actions)
        return clipped_surrogate(log_probs, old_log_probs, adv, clip)[0]

    @torch.no_grad()
    def gradient(self, perturbed: torch.Tensor) -> torch.Tensor:
        """d L_i / d s'_i, ``(B, obs_dim)``."""
        s = Surrogate(self.actor, perturbed, *self.args)
        return self.actor.mean_net.input_gradient(s.cache, s.mean_grad(1.0))


class ActionAlong:
    """Per-sample ``<mu(s'), d>``: how far the policy's action moves along a direction ``d``
    (PA-AD's actor, Sun et al. ICLR 2022). A Gaussian actor gets the closed-form
    :meth:`gradient` ``J(s')^T d``; any other actor autograd.

    Args:
        actor: the policy (``forward`` gives the deterministic action); direction: ``(B,
            act_dim)``.
    """

    def __init__(self, actor: nn.Module, direction: torch.Tensor) -> None:
        self.actor, self.direction = actor, direction.detach()
        if isinstance(actor, GaussianActor):
            self.gradient = self._closed_form_gradient

    def __call__(self, perturbed: torch.Tensor) -> torch.Tensor:
        return (self.actor(perturbed) * self.direction).sum(-1)

    @torch.no_grad()
    def _closed_form_gradient(self, perturbed: torch.Tensor) -> torch.Tensor:
        """``J(s'_i)^T d_i``, ``(B, obs_dim)``."""
        _, cache = self.actor.mean_net.forward_cached(perturbed)
        return self.actor.mean_net.input_gradient(cache, self.direction)


def negative_value(critic: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``-V(s')``: maximising it finds states the critic values least (the Critic attack)."""

    def objective(perturbed: torch.Tensor) -> torch.Tensor:
        return -critic(perturbed)

    return objective


class NegatedTwinQ:
    """``-Q_i(s, a_i)`` of each of the twin critics at its own actions: ``(2, B, act_dim) ->
    (2, B)``, so that the solvers, which maximise, drive each critic down (OA-TD3's inner
    minimisation, arXiv 2507.03372). Actions in action units, ``obs`` normalised ``(B,
    obs_dim)``. Calling it is :meth:`TwinQ.forward`; :meth:`value_and_gradient` gives the
    value and its gradient from one forward pass in closed form, with the observations' share
    of the first layer computed once (equal to the call up to float rounding).
    """

    def __init__(self, critics: TwinQ, obs: torch.Tensor) -> None:
        self.critics, self.obs = critics, obs
        with torch.no_grad():
            self.obs_part = critics.observation_part(obs)

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        return -self.critics(self.obs, actions)

    @torch.no_grad()
    def value_and_gradient(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(-Q, d(-Q)/d actions)``, shapes ``(2, B)`` and ``(2, B, act_dim)``."""
        q, hidden = self.critics.forward_cached(self.obs_part, actions)
        return -q, self.critics.action_gradient(hidden, torch.full_like(q, -1.0))


def worst_twin_q(critics: TwinQ, obs: torch.Tensor, actions: torch.Tensor,
                 radius: torch.Tensor, steps: int,
                 box: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The OA Bellman operator's inner min for twin critics (OA-TD3, arXiv 2507.03372):
    each critic at the lowest point ``steps`` PGD sign steps from ``actions`` evaluated over
    the ball of per-dimension ``radius`` and the ``box`` (the start included, so never above
    the unperturbed value, up to float rounding), then the smaller of the two; ``(B,)``.
    ``obs`` normalised ``(B, obs_dim)``, ``actions`` ``(B, act_dim)`` in action units."""
    _, negated = pgd_best(NegatedTwinQ(critics, obs), actions.expand(2, -1, -1), radius, steps,
                          box=box)
    return (-negated).min(0).values
