"""Return landscapes of a policy: the natural return and the return under an attack along
1-D and 2-D slices of the policy's parameter space, around one agent or between two
(Li, Xu, Taylor, Studer, Goldstein, NeurIPS 2018, "Visualizing the Loss Landscape of Neural
Nets": filter-normalised random directions). The BARPO paper (Li et al., ICLR 2026, section 3)
reads such pictures: the strongest adversary carves deep valleys into the worst-case
landscape.

Only the actor moves (the policy's parameters; critics play no part in a deterministic
evaluation). Each point's return is a Monte-Carlo mean over deterministic episodes
(:func:`robustpo.results.suite.evaluate`) with its bootstrap 95% CI; the observation
normaliser of the centre agent is used throughout, so along a line between two agents the
far end is agent B's actor behind agent A's normaliser (equal to agent B only when their
normalisers agree).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..agents.agent import Agent
from ..attacks import make_attack
from ..attacks.base import learned_attack_names
from ..errors import ConfigError
from ..results.suite import evaluate


def actor_parameters(agent: Agent) -> dict[str, torch.Tensor]:
    """The actor's parameters by name (detached copies)."""
    return {k: v.detach().clone() for k, v in agent.actor.named_parameters()}


def filter_normalized_direction(agent: Agent, generator: torch.Generator
                                ) -> dict[str, torch.Tensor]:
    """A random Gaussian direction in the actor's parameter space, each filter (the weights
    into one output unit: a row of a ``(out, in)`` matrix) rescaled to the norm of the same
    filter of the agent's weights (Li et al. 2018, section 4); zero on biases and other
    one-dimensional parameters (the log-std), as Li et al. do for biases."""
    out = {}
    for name, weight in actor_parameters(agent).items():
        if weight.dim() < 2:
            out[name] = torch.zeros_like(weight)
            continue
        d = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        rows = weight.reshape(weight.shape[0], -1)
        d_rows = d.reshape(d.shape[0], -1)
        scale = rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + 1e-10)
        out[name] = (d_rows * scale).reshape(weight.shape)
    return out


def direction_between(agent: Agent, other: Agent) -> dict[str, torch.Tensor]:
    """``theta_other - theta_agent`` over the actor's parameters.

    Raises:
        ConfigError: the two actors do not have the same parameters and shapes.
    """
    a, b = actor_parameters(agent), actor_parameters(other)
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ConfigError(
            "The two agents' actors differ in architecture "
            f"({ {k: tuple(v.shape) for k, v in a.items()} } vs "
            f"{ {k: tuple(v.shape) for k, v in b.items()} }); a line between them needs the "
            "same network.")
    return {k: b[k] - a[k] for k in a}


def moved(agent: Agent, steps: list[tuple[float, dict[str, torch.Tensor]]]) -> Agent:
    """A copy of ``agent`` whose actor is ``theta + sum_i alpha_i * d_i``."""
    out = copy.deepcopy(agent)
    with torch.no_grad():
        for name, param in out.actor.named_parameters():
            for alpha, direction in steps:
                param.add_(direction[name], alpha=alpha)
    return out


@dataclass(frozen=True)
class LandscapePoint:
    """Mean return and its 95% CI at one point of a slice.

    Attributes:
        coords: the step along each direction (1 or 2 numbers; 0 is the agent, 1 along a
            ``direction_between`` is the other agent's actor).
        natural, attacked: ``(mean, ci_low, ci_high)`` of the undiscounted episode return,
            without attack and under the attack (None without one).
    """

    coords: tuple[float, ...]
    natural: tuple[float, float, float]
    attacked: tuple[float, float, float] | None


def landscape(agent: Agent, directions: list[dict[str, torch.Tensor]], grid: list[np.ndarray],
              episodes: int = 10, attack: str | None = None, eps: float | None = None,
              seed: int = 0) -> list[LandscapePoint]:
    """Evaluate the agent moved to every point of the grid (the product of ``grid``, one
    array of steps per direction) without attack and, if given, under ``attack`` at ``eps``
    (default: the agent's eps). Every point uses the same episode seeds.

    Raises:
        ConfigError: ``directions`` and ``grid`` differ in length, or not 1 or 2 of them; or
            ``attack`` is a learned one (it would train a new adversary at every point).
        UnknownNameError: an unknown attack.
    """
    if len(directions) != len(grid) or len(directions) not in (1, 2):
        raise ConfigError("A landscape slice takes 1 or 2 directions, each with its steps.")
    if attack is not None:
        make_attack(attack)  # an unknown name is an error before any work
        if attack in learned_attack_names():
            raise ConfigError(
                f"{attack!r} trains a model against its victim, which would be retrained at "
                f"every point of the slice; use an attack that does not learn "
                f"(random, critic, mad).")
    eps = agent.attack_eps if eps is None else eps
    points = []
    for coords in np.array(np.meshgrid(*grid, indexing="ij")).reshape(len(grid), -1).T:
        point = moved(agent, list(zip(coords.tolist(), directions, strict=True)))
        natural = evaluate(point, episodes, None, 0.0, seed=seed)
        attacked = None if attack is None else evaluate(point, episodes, attack, eps, seed=seed)
        points.append(LandscapePoint(tuple(float(c) for c in coords), _summary(natural),
                                     None if attacked is None else _summary(attacked)))
    return points


def _summary(result) -> tuple[float, float, float]:
    return (float(result.stats.mean), float(result.stats.ci95[0]), float(result.stats.ci95[1]))
