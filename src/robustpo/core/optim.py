"""Adam as every learner and method builds it, and its state for exact checkpoints."""

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
