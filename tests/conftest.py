"""Shared fixtures: tiny training configs that run in seconds."""

from __future__ import annotations

import pytest
import torch

TINY = {
    "num_envs": 2, "rollout_steps": 64, "minibatches": 4, "epochs": 2, "checkpoint_every": 2,
}


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
