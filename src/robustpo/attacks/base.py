"""The observation-attack protocol and registry.

An attack maps a batch of clean *normalised* observations to perturbed ones inside the l_inf
eps-ball (an SA-MDP adversary, Zhang et al. NeurIPS 2020). The evaluation loop checks every
result with :func:`robustpo.core.perturb.check_in_ball` and raises if one leaves the ball.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..errors import UnknownNameError

if TYPE_CHECKING:
    from ..agents.agent import Agent


class ObservationAttack(ABC):
    """Base class of observation attacks.

    Subclasses set ``name`` and implement :meth:`perturb`. Attacks that learn something about
    the victim first (robust Sarsa, learned adversaries) do it in :meth:`prepare`.

    Args:
        seed: seed of the attack's own random generator (used by random starts and noise).
        protocol: ``quick`` or ``paper``: how much a learned attack trains and searches
            (:mod:`robustpo.attacks.scan`); attacks that learn nothing ignore it.

    Raises:
        UnknownNameError: an unknown protocol.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    in_suite: ClassVar[bool] = True  # part of ``--attacks all``
    learned: ClassVar[bool] = False  # trains a model of or against the victim first

    def __init__(self, seed: int = 0, protocol: str = "quick") -> None:
        if protocol not in PROTOCOLS:
            raise UnknownNameError("protocol", protocol, list(PROTOCOLS))
        self.protocol = protocol
        # What the attack learned and how (a learned attack's scan), for attack.json.
        self.details: dict[str, Any] = {}
        self.generator = torch.Generator().manual_seed(seed)
        # Where attacks that learn (robust Sarsa, SA-RL) keep their models for reuse; None keeps
        # nothing. ``robustpo attack`` sets it to RUN_DIR/attacks.
        self.cache_dir: Path | None = None

    @property
    def cache_name(self) -> str:
        """The attack's cache directory stem: protocols keep their models apart."""
        return self.name if self.protocol == "quick" else f"{self.name}-{self.protocol}"

    def prepare(self, agent: Agent, eps: float) -> None:  # noqa: B027 - optional hook
        """Called once before an evaluation; the default does nothing."""

    @abstractmethod
    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        """Perturbed observations.

        Args:
            agent: the victim (its networks act on normalised observations).
            obs: clean normalised observations, float32, shape ``(batch, obs_dim)``.
            eps: l_inf radius in normalised units.

        Returns:
            float32 tensor of the same shape with ``|result - obs|_inf <= eps``.
        """


PROTOCOLS = ("quick", "paper")
_REGISTRY: dict[str, type[ObservationAttack]] = {}


def register(cls: type[ObservationAttack]) -> type[ObservationAttack]:
    """Class decorator adding an attack to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def attack_names(suite_only: bool = False) -> list[str]:
    """Registered attack names; ``suite_only`` keeps those of ``--attacks all``."""
    return [n for n, cls in _REGISTRY.items() if cls.in_suite or not suite_only]


def learned_attack_names() -> list[str]:
    """Registered attacks that learn (robust Sarsa, SA-RL, PA-AD): their strength depends on
    their training and search, so results flag them when they did not converge."""
    return [n for n, cls in _REGISTRY.items() if cls.learned]


def attack_descriptions() -> dict[str, str]:
    """``{name: one-line description}`` of every registered attack."""
    return {name: cls.description for name, cls in _REGISTRY.items()}


def make_attack(name: str, seed: int = 0, protocol: str = "quick") -> ObservationAttack:
    """Instantiate a registered attack by name, for ``protocol`` (``quick`` or ``paper``).

    Raises:
        UnknownNameError: no attack or protocol of that name (the message lists the valid ones).
    """
    if name not in _REGISTRY:
        raise UnknownNameError("attack", name, attack_names())
    return _REGISTRY[name](seed=seed, protocol=protocol)
