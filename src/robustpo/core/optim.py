"""Adam as every learner and method builds it, its state for exact checkpoints, and the
Polyak averaging of target networks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adam(params: Iterable[Any], **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam(params, **kwargs)`` with the fused CPU kernel where the installed
    torch has it (>= 2.4), else the multi-tensor one; both compute the same update."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except RuntimeError:
        return torch.optim.Adam(params, foreach=True, **kwargs)


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Every per-parameter state tensor of ``optimizer`` as ``<prefix><param id>.<name>``."""
    return {f"{prefix}{pid}.{key}": torch.as_tensor(value)
            for pid, state in optimizer.state_dict()["state"].items()
            for key, value in state.items()}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   prefix: str, groups: list[dict[str, Any]] | None = None) -> None:
    """Load :func:`optimizer_tensors`' output, with the saved ``param_groups`` (default: the
    optimiser's own, for a constant learning rate).

    Raises:
        ValueError / KeyError: the state does not fit the optimiser's parameters.
    """
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, _, name = key[len(prefix):].partition(".")
            state.setdefault(int(pid), {})[name] = value
    groups = optimizer.state_dict()["param_groups"] if groups is None else groups
    optimizer.load_state_dict({"state": state, "param_groups": groups})


@torch.no_grad()
def polyak_update(target: torch.nn.Module | list[torch.Tensor],
                  source: torch.nn.Module | list[torch.Tensor], tau: float) -> None:
    """Move ``target``'s parameters a fraction ``tau`` towards ``source``'s, in place:
    ``target <- (1 - tau) * target + tau * source`` (Lillicrap et al. 2016; TD3's tau 0.005).
    Both are modules with parameters in the same order, or lists of tensors."""
    def params(x: torch.nn.Module | list[torch.Tensor]) -> list[torch.Tensor]:
        return list(x.parameters()) if isinstance(x, torch.nn.Module) else list(x)

    torch._foreach_lerp_(params(target), params(source), tau)
