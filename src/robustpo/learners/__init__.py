"""Learners: algorithms behind the :class:`~robustpo.learners.base.Learner` interface."""

from __future__ import annotations

from ..config.sections import TrainConfig
from ..errors import UnknownNameError
from .base import EpisodeTracker, Learner
from .ppo import PPOLearner
from .td3 import TD3Learner

LEARNERS: dict[str, type[Learner]] = {"ppo": PPOLearner, "td3": TD3Learner}


def make_learner(cfg: TrainConfig, name: str = "ppo") -> Learner:
    """Build the learner ``name`` for ``cfg``.

    Raises:
        UnknownNameError: no such learner, or an unknown environment.
        ConfigError: ``cfg`` lacks the learner's section or the method's, or the environment
            cannot be made.
    """
    if name not in LEARNERS:
        raise UnknownNameError("learner", name, list(LEARNERS))
    return LEARNERS[name](cfg)


__all__ = ["LEARNERS", "EpisodeTracker", "Learner", "PPOLearner", "TD3Learner", "make_learner"]
