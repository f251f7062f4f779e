"""The simulators' states, which every learner saves and restores the same way."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch


def simulator_state(envs: gym.vector.VectorEnv
                    ) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]] | None]:
    """The MuJoCo states of the environment copies (``env.<i>.mj_state``) and the rest of
    their state (step counters, random generators); ``({}, None)`` for tasks without a
    savable simulator state."""
    sim = envs.call("get_sim_state")
    if any(s is None for s in sim):
        return {}, None
    tensors = {f"env.{i}.mj_state": torch.from_numpy(s["mj_state"]) for i, s in enumerate(sim)}
    return tensors, [{"elapsed_steps": s["elapsed_steps"], "np_random": s["np_random"]}
                     for s in sim]


def restore_simulators(envs: gym.vector.VectorEnv, tensors: dict[str, torch.Tensor],
                       states: list[dict[str, Any]] | None) -> bool:
    """Put the copies back in the states :func:`simulator_state` saved; False when none were
    saved (the learner then starts fresh episodes)."""
    if states is None:
        return False
    saved = [dict(s, mj_state=tensors[f"env.{i}.mj_state"].numpy())
             for i, s in enumerate(states)]
    envs.set_attr("pending_sim_state", saved)
    envs.call("apply_pending_sim_state")
    return True
