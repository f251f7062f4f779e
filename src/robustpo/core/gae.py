"""Generalised advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control
Using Generalized Advantage Estimation", eq. 16)."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    episode_ends: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets of a rollout, all tensors of shape ``(T, num_envs)``.

    Args:
        rewards: r_t (scaled rewards, float32).
        values: V(s_t).
        next_values: the value of the state that follows s_t *in the same episode*: V(s_{t+1})
            in the middle of an episode, V(final observation) when the episode was truncated
            (time limit) at t, and 0 when it terminated at t.
        episode_ends: 1.0 where the episode ended (terminated or truncated) at t, else 0.0; the
            advantage recursion does not cross these steps.
        gamma: discount factor; lam: GAE lambda.

    Returns:
        ``(advantages, returns)`` with ``delta_t = r_t + gamma * next_values_t - V(s_t)``,
        ``A_t = delta_t + gamma * lam * (1 - end_t) * A_{t+1}`` and ``returns = A + V``.
    """
    deltas = rewards + gamma * next_values - values
    continues = (1.0 - episode_ends) * (gamma * lam)
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + continues[t] * running
        advantages[t] = running
    return advantages, advantages + values
