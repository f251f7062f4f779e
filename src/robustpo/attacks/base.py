"""The attack protocols and their registry.

An observation attack maps a batch of clean *normalised* observations to perturbed ones inside
the l_inf eps-ball (an SA-MDP adversary, Zhang et al. NeurIPS 2020); an action attack maps
the victim's actions to executed ones inside the action ball and the action space (REFERENCE
section 5). The evaluation loop checks every result (:mod:`robustpo.core.perturb`) and raises
if one leaves its ball. Attacks are registered by target and name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch

from ..errors import UnknownNameError
from ..io.locks import exclusive
from .cache import cache_directory

if TYPE_CHECKING:
    from ..agents.agent import Agent


class Attack(ABC):
    """Base class of attacks on observations (:class:`ObservationAttack`) and on actions
    (:class:`ActionAttack`).

    Subclasses set ``name`` and implement ``perturb``. Attacks that learn something about the
    victim first (robust Sarsa, learned adversaries, learned Q functions) do it in
    :meth:`prepare`.

    Args:
        seed: seed of the attack's own random generator (used by random starts and noise).
        protocol: ``quick`` or ``paper``: how much a learned attack trains and searches
            (:mod:`robustpo.attacks.scan`); attacks that learn nothing ignore it.

    Raises:
        UnknownNameError: an unknown protocol.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    target: ClassVar[str]  # what it perturbs: "observation" or "action"
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
        """The attack's cache directory stem: targets and protocols keep their models apart."""
        stem = self.name if self.target == OBSERVATION else f"{self.target}-{self.name}"
        return stem if self.protocol == "quick" else f"{stem}-{self.protocol}"

    def prepare_exclusively(self, agent: Agent, eps: float) -> None:
        """:meth:`prepare`, holding the lock of this attack's cache at ``eps``
        (``cache_dir/<cache_name>-eps<eps>.lock``) when it learns and caches, so that two
        processes never train the same models at once.

        Raises:
            BusyError: another process is preparing this attack at ``eps`` on this cache.
        """
        if not self.learned or self.cache_dir is None:
            self.prepare(agent, eps)
            return
        directory = cache_directory(self.cache_dir, self.cache_name, eps)
        lock = directory.with_name(f"{directory.name}.lock")
        with exclusive(lock, f"cache of attack {self.name!r} at eps {eps:g} in "
                             f"{self.cache_dir}"):
            self.prepare(agent, eps)

    def prepare(self, agent: Agent, eps: float) -> None:  # noqa: B027 - optional hook
        """Called once before an evaluation (by
        :func:`~robustpo.evaluation.episodes.run_episodes`); the default does nothing. Learned
        attacks train or load their models here (minutes to hours at the paper protocol's
        budgets), cached under :attr:`cache_dir`, and must be prepared before
        :meth:`perturb`."""


class ObservationAttack(Attack):
    """An attack on the observation (an SA-MDP adversary, Zhang et al. NeurIPS 2020): it maps
    clean *normalised* observations into their l_inf eps-ball."""

    target = "observation"

    @abstractmethod
    def perturb(self, agent: Agent, obs: torch.Tensor, eps: float) -> torch.Tensor:
        """Perturbed observations.

        Args:
            agent: the victim (its networks act on normalised observations).
            obs: clean normalised observations, float32, shape ``(batch, obs_dim)``.
            eps: l_inf radius in normalised units.

        Returns:
            float32 tensor of the same shape with ``|result - obs|_inf <= eps``.

        Raises:
            RuntimeError: a learned attack whose :meth:`prepare` has not run.
        """


class ActionAttack(Attack):
    """An attack on the action (REFERENCE section 5): the environment executes
    ``clip(a + delta, low, high)`` with ``|delta_i| <= eps * h_i``, ``h`` the half-range of
    the action space (eps 0.1 moves each actuator by up to 10% of its half-range).
    :func:`action_ball` gives the ball's bounds."""

    target = "action"

    @abstractmethod
    def perturb(self, agent: Agent, obs: torch.Tensor, actions: torch.Tensor, eps: float
                ) -> torch.Tensor:
        """The executed actions.

        Args:
            agent: the victim.
            obs: clean normalised observations, float32, ``(batch, obs_dim)``.
            actions: the victim's actions, action units, within the bounds, ``(batch,
                act_dim)``.
            eps: radius in units of the half-range.

        Returns:
            float32 actions ``(batch, act_dim)`` inside :func:`action_ball`.

        Raises:
            RuntimeError: a learned attack whose :meth:`prepare` has not run.
        """


def action_ball(agent: Agent, actions: torch.Tensor, eps: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds ``(low, high)`` ``(batch, act_dim)`` of the executed actions an action attack
    may choose: the l_inf ball of radius ``eps`` half-ranges around ``actions``, within the
    action space."""
    low = torch.as_tensor(agent.action_low)
    high = torch.as_tensor(agent.action_high)
    radius = eps * (high - low) / 2
    return torch.maximum(actions - radius, low), torch.minimum(actions + radius, high)


def biggest_direction(agent: Agent, actions: torch.Tensor) -> torch.Tensor:
    """The sign, per dimension, of the move away from the nearer bound of the action space
    (``-1`` above the centre, ``1`` at or below it), ``actions.shape``: the direction of the
    ``biggest`` attack's vertex (:mod:`robustpo.attacks.action`)."""
    centre = torch.as_tensor((agent.action_low + agent.action_high) / 2)
    return torch.where(actions > centre, -1.0, 1.0).to(actions.dtype)


PROTOCOLS = ("quick", "paper")
OBSERVATION, ACTION = "observation", "action"
ACTION_EPS = 0.1  # the default action-attack radius, half-ranges (REFERENCE section 5)
TARGETS = (OBSERVATION, ACTION)
_REGISTRY: dict[tuple[str, str], type[Attack]] = {}
AttackT = TypeVar("AttackT", bound=type[Attack])


def register(cls: AttackT) -> AttackT:
    """Class decorator adding an attack to the registry under ``(cls.target, cls.name)``."""
    _REGISTRY[(cls.target, cls.name)] = cls
    return cls


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise UnknownNameError("attack target", target, list(TARGETS))


def attack_names(suite_only: bool = False, target: str = OBSERVATION) -> list[str]:
    """Registered attack names on ``target``; ``suite_only`` keeps those of ``--attacks all``.

    Raises:
        UnknownNameError: an unknown target.
    """
    _check_target(target)
    return [n for (t, n), cls in _REGISTRY.items()
            if t == target and (cls.in_suite or not suite_only)]


def learned_attack_names(target: str = OBSERVATION) -> list[str]:
    """Registered attacks on ``target`` that learn (robust Sarsa, SA-RL, PA-AD, learned Q
    functions): their strength depends on their training and search, so results flag them
    when they did not converge."""
    return [n for (t, n), cls in _REGISTRY.items() if t == target and cls.learned]


def attack_descriptions(target: str = OBSERVATION) -> dict[str, str]:
    """``{name: one-line description}`` of every registered attack on ``target``."""
    return {n: cls.description for (t, n), cls in _REGISTRY.items() if t == target}


def make_attack(name: str, seed: int = 0, protocol: str = "quick",
                target: str = OBSERVATION) -> Attack:
    """Instantiate a registered attack on ``target`` by name, for ``protocol``. ``none``
    (the natural return) is the observation attack of that name whatever the target.

    Raises:
        UnknownNameError: no attack, target or protocol of that name (the message lists the
            valid ones).
    """
    _check_target(target)
    if name == "none":
        target = OBSERVATION
    if (target, name) not in _REGISTRY:
        raise UnknownNameError(f"{target} attack", name, attack_names(target=target))
    return _REGISTRY[(target, name)](seed=seed, protocol=protocol)
