"""Interval bound propagation (IBP; Gowal et al. 2018) through robustpo's tanh MLPs.

auto_LiRPA, which the public code bases use for these bounds, is not installable from the
package registry; for our MLPs (linear layers and a monotone activation) IBP is a few lines.
"""

from __future__ import annotations

import torch

from .nets import MLP


def interval_bounds(
    net: MLP, lower: torch.Tensor, upper: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise bounds of ``net(x)`` over the box ``lower <= x <= upper``.

    A linear layer maps the box with centre c and radius r to centre ``W c + b`` and radius
    ``|W| r``; tanh is monotone, so it maps bounds to bounds. Differentiable (the robust Sarsa
    penalty trains through it).

    Args:
        net: a :class:`~robustpo.core.nets.MLP`.
        lower, upper: ``(batch, in_dim)`` with ``lower <= upper``.

    Returns:
        ``(lower, upper)`` of shape ``(batch, out_dim)``; every output of the box lies inside
        (``tests/test_ibp.py``), and they coincide with ``net(x)`` when the box is the point x.
    """
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    *hidden, last = net.layers
    for layer in hidden:
        centre = torch.nn.functional.linear(centre, layer.weight, layer.bias)
        radius = torch.nn.functional.linear(radius, layer.weight.abs())
        lo, hi = torch.tanh(centre - radius), torch.tanh(centre + radius)
        centre, radius = (hi + lo) / 2, (hi - lo) / 2
    centre = torch.nn.functional.linear(centre, last.weight, last.bias)
    radius = torch.nn.functional.linear(radius, last.weight.abs())
    return centre - radius, centre + radius
