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


# A small TD3 for fast tests: 300 random steps, then a gradient step per environment step.
TINY_TD3 = {"learning_starts": 300, "iteration_steps": 100, "batch_size": 32,
            "hidden": [16, 16], "buffer_size": 5000}
REDUCTION = dict(steps=800, seed=4, preset="defaults", progress=False)


@pytest.fixture(scope="session")
def td3_baseline(tmp_path_factory):
    """A short TD3 run that the methods reducing to TD3 (alpha, omega or eps 0) equal."""
    from robustpo.training.driver import train

    return train("td3", "Hopper-v5", out=tmp_path_factory.mktemp("td3") / "run",
                 overrides={**TINY_TD3, "learning_starts": 200}, **REDUCTION)
