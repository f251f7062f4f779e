"""Policy and value networks of the PPO recipe (REFERENCE section 3).

All networks take *normalised* observations, float32, shape ``(batch, obs_dim)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)


class MLP(nn.Module):
    """Tanh MLP with orthogonal initialisation.

    Hidden layers use gain sqrt(2) and zero biases; the output layer uses ``out_gain`` (0.01 for
    the policy mean, 1.0 for the value), as in CleanRL and Engstrom et al. 2020.

    Args:
        in_dim: input size.
        hidden: hidden layer sizes, e.g. ``(64, 64)``.
        out_dim: output size.
        out_gain: orthogonal gain of the output layer.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, out_gain: float) -> None:
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            nn.init.orthogonal_(layer.weight, gain=out_gain if last else math.sqrt(2.0))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear directly: these nets are tiny and per-module call overhead dominates.
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.tanh(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)

    def forward_cached(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and the input of every layer, for :meth:`backward` (call under no_grad)."""
        inputs = [x]
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.tanh(torch.addmm(layer.bias, x, layer.weight.t()))
            inputs.append(x)
        return torch.addmm(last.bias, x, last.weight.t()), inputs

    def backward(self, inputs: list[torch.Tensor], grad_out: torch.Tensor) -> list[torch.Tensor]:
        """Gradients of a loss with respect to the parameters, by the chain rule.

        Args:
            inputs: the layer inputs returned by :meth:`forward_cached`.
            grad_out: d loss / d output, shape ``(batch, out_dim)``.

        Returns:
            Gradients in the order of ``self.parameters()`` (weight, bias of each layer).
            Equal to autograd's up to float rounding (``tests/test_ppo_grad.py``).
        """
        grads: list[torch.Tensor] = []
        g = grad_out
        for i in range(len(self.layers) - 1, -1, -1):
            x = inputs[i]
            grads += [g.sum(0), g.t().mm(x)]
            if i > 0:  # x = tanh(pre-activation): d tanh = 1 - x^2
                g = g.mm(self.layers[i].weight).mul_(1.0 - x * x)
        return grads[::-1]

    def input_gradient(self, inputs: list[torch.Tensor], grad_out: torch.Tensor) -> torch.Tensor:
        """d loss / d input ``(batch, in_dim)`` by the chain rule, for the eps-ball solvers.

        Args as :meth:`backward`. Row i depends on row i of ``grad_out`` only.
        """
        g = grad_out
        for i in range(len(self.layers) - 1, 0, -1):
            x = inputs[i]
            g = g.mm(self.layers[i].weight).mul_(1.0 - x * x)
        return g.mm(self.layers[0].weight)


class GaussianActor(nn.Module):
    """Diagonal Gaussian policy: mean = MLP(s), log-std a state-independent parameter.

    Args:
        obs_dim: normalised observation size.
        act_dim: action size.
        hidden: hidden sizes (64, 64 in REFERENCE section 3).
        init_std: initial standard deviation of every action dimension (REFERENCE: 1.0, 0.5 for
            HalfCheetah).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: Sequence[int], init_std: float = 1.0
    ) -> None:
        super().__init__()
        self.mean_net = MLP(obs_dim, hidden, act_dim, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Action mean, shape ``(batch, act_dim)``; actions are unbounded (clipped by the env)."""
        return self.mean_net(obs)

    def log_prob(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-density of ``actions`` ``(batch, act_dim)`` under N(mean, std^2); ``(batch,)``."""
        z = (actions - mean) * torch.exp(-self.log_std)
        return -0.5 * (z * z).sum(-1) - self.log_std.sum() - 0.5 * LOG_2PI * mean.shape[-1]

    def entropy(self) -> torch.Tensor:
        """Entropy of the Gaussian, a scalar (the same for every state)."""
        return (self.log_std + 0.5 * (1.0 + LOG_2PI)).sum()


class ValueNet(nn.Module):
    """State-value MLP V(s), a separate network from the policy; output shape ``(batch,)``."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.net = MLP(obs_dim, hidden, 1, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
