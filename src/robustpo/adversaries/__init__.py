"""Training adversaries of the PPO family, one module per method, registered by name."""

# The registration order is the listing order: the baseline first.
# isort: off
from . import spo, sappo, carppo, barppo  # noqa: F401 - registers the methods
# isort: on
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
