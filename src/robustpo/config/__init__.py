"""Config dataclasses: the PPO core, method sections, run management (see :mod:`.sections`)."""

from .sections import MethodConfig, PPOConfig, RobustMethodConfig, RunConfig, TrainConfig

__all__ = ["MethodConfig", "PPOConfig", "RobustMethodConfig", "RunConfig", "TrainConfig"]
