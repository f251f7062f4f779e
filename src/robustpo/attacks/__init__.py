"""Observation attacks (SA-MDP adversaries) on normalised observations."""

from . import gradient, learned, random_noise  # noqa: F401 - registers the attacks
from .base import ObservationAttack, attack_descriptions, attack_names, make_attack, register

__all__ = ["ObservationAttack", "attack_descriptions", "attack_names", "make_attack", "register"]
