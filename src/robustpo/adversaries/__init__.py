"""Training adversaries of the PPO family, one module per method, registered by name."""

from . import barppo, carppo, sappo, spo  # noqa: F401 - registers the methods
from .base import (
    Minibatch,
    PolicyStep,
    RobustAdversary,
    TrainingAdversary,
    method_class,
    method_names,
    register,
)

__all__ = ["Minibatch", "PolicyStep", "RobustAdversary", "TrainingAdversary", "method_class",
           "method_names", "register"]
