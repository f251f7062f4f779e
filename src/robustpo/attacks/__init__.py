"""Attacks on observations (SA-MDP adversaries, on normalised observations) and on actions."""

# The registration order is the listing order: the baselines first.
# isort: off
from . import random_noise, gradient, robust_sarsa, learned, action  # noqa: F401 - registers them
# isort: on
from .base import (
    ActionAttack,
    Attack,
    ObservationAttack,
    attack_descriptions,
    attack_names,
    learned_attack_names,
    make_attack,
    register,
)

__all__ = ["ActionAttack", "Attack", "ObservationAttack", "attack_descriptions", "attack_names",
           "learned_attack_names", "make_attack", "register"]
