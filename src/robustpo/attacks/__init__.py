"""Observation attacks (SA-MDP adversaries) on normalised observations."""

from . import gradient, learned, random_noise, robust_sarsa  # noqa: F401 - registers them
from .base import (
    ObservationAttack,
    attack_descriptions,
    attack_names,
    learned_attack_names,
    make_attack,
    register,
)

__all__ = ["ObservationAttack", "attack_descriptions", "attack_names", "learned_attack_names",
           "make_attack", "register"]
