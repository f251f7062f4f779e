"""The PPO minibatch loss, and its gradient in closed form.

``ppo_loss`` is the reference, differentiated by autograd: the clipped surrogate (Schulman et
al. 2017, eq. 7), the value regression (optionally with the clipped value of the OpenAI
baselines), and an entropy bonus. ``ppo_loss_and_grads`` returns the same loss with its
gradient computed by the chain rule through the tanh MLPs: for these small networks, autograd's
per-operation bookkeeping costs more than the arithmetic, and the closed form makes the update
about three times faster. The two agree to float rounding (``tests/test_ppo_grad.py``);
``PPOConfig.analytic_grads = false`` selects autograd.

All inputs are minibatch tensors: ``obs`` normalised ``(B, obs_dim)``, ``actions`` ``(B,
act_dim)``, the rest ``(B,)``; ``adv`` is already normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .nets import LOG_2PI, GaussianActor, ValueNet


@dataclass
class MinibatchLoss:
    """Scalar parts of the loss and the per-sample ratio (for diagnostics)."""

    policy: torch.Tensor
    value: torch.Tensor
    ratio: torch.Tensor
    log_probs: torch.Tensor


def clipped_surrogate(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample negated clipped surrogate ``-min(r A, clip(r, 1-c, 1+c) A)`` and ratio r."""
    ratio = torch.exp(log_probs - old_log_probs)
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1 - clip, 1 + clip) * advantages)
    return -surrogate, ratio


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float | None
) -> torch.Tensor:
    """``0.5 * mean((V - R)^2)``, or with ``clip`` the pessimistic clipped form
    ``0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2))``."""
    err = (values - returns) ** 2
    if clip is None:
        return 0.5 * err.mean()
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * torch.max(err, (clipped - returns) ** 2).mean()


def ppo_loss(
    actor: GaussianActor, critic: ValueNet, obs: torch.Tensor, actions: torch.Tensor,
    old_log_probs: torch.Tensor, old_values: torch.Tensor, adv: torch.Tensor,
    returns: torch.Tensor, clip: float, value_clip: float | None,
) -> MinibatchLoss:
    """The loss parts as differentiable tensors (total = policy + value - c * entropy)."""
    log_probs = actor.log_prob(actor(obs), actions)
    surrogate, ratio = clipped_surrogate(log_probs, old_log_probs, adv, clip)
    return MinibatchLoss(
        surrogate.mean(), value_loss(critic(obs), old_values, returns, value_clip), ratio,
        log_probs,
    )


@torch.no_grad()
def ppo_loss_and_grads(
    actor: GaussianActor, critic: ValueNet, obs: torch.Tensor, actions: torch.Tensor,
    old_log_probs: torch.Tensor, old_values: torch.Tensor, adv: torch.Tensor,
    returns: torch.Tensor, clip: float, value_clip: float | None, entropy_coef: float,
) -> tuple[MinibatchLoss, list[torch.Tensor], list[torch.Tensor]]:
    """The loss of :func:`ppo_loss` (minus ``entropy_coef`` times the entropy) and its
    gradients, in the order of ``actor.parameters()`` and ``critic.parameters()``."""
    n = obs.shape[0]
    # Policy: log pi = -0.5 |z|^2 - sum(log_std) - const, z = (a - mu) / std.
    mu, actor_inputs = actor.mean_net.forward_cached(obs)
    inv_std = torch.exp(-actor.log_std)
    z = (actions - mu) * inv_std
    log_probs = -0.5 * (z * z).sum(1) - actor.log_std.sum() - 0.5 * LOG_2PI * mu.shape[1]
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip) * adv
    policy = -torch.min(unclipped, clipped).mean()
    # d policy / d ratio = -adv / n, except where the clipped term is the (strictly) smaller
    # one and the clamp is active: there the gradient is zero.
    active = (unclipped <= clipped) | ((ratio >= 1 - clip) & (ratio <= 1 + clip))
    g_logp = (-adv / n) * active * ratio  # d policy / d log pi
    g_mu = (g_logp[:, None] * z) * inv_std  # d log pi / d mu = z / std
    # d log pi / d log_std = z^2 - 1; the entropy sum(log_std) + const adds -entropy_coef.
    g_log_std = (g_logp[:, None] * (z * z - 1.0)).sum(0) - entropy_coef
    actor_grads = [g_log_std, *actor.mean_net.backward(actor_inputs, g_mu)]
    # Value.
    v, critic_inputs = critic.net.forward_cached(obs)
    v = v.squeeze(1)
    err = v - returns
    if value_clip is None:
        value = 0.5 * (err * err).mean()
        g_v = err / n
    else:
        delta = v - old_values
        err_clipped = old_values + torch.clamp(delta, -value_clip, value_clip) - returns
        take_unclipped = err * err >= err_clipped * err_clipped
        value = 0.5 * torch.where(take_unclipped, err * err, err_clipped * err_clipped).mean()
        inside = (delta >= -value_clip) & (delta <= value_clip)
        g_v = torch.where(take_unclipped, err, err_clipped * inside) / n
    critic_grads = critic.net.backward(critic_inputs, g_v[:, None])
    return MinibatchLoss(policy, value, ratio, log_probs), actor_grads, critic_grads
