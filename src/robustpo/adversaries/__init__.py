"""Training methods, one module per method, registered by name: the PPO family's training
adversaries (:mod:`.base`) and the TD3 family's plug-ins (:mod:`.offpolicy`)."""

# The registration order is the listing order: the baseline first.
# isort: off
from . import spo, sappo, carppo, barppo, oappo, td3, prnr, oatd3  # noqa: F401 - registers them
# isort: on
from .base import (
    Method,
    Minibatch,
    PolicyStep,
    RobustAdversary,
    TrainingAdversary,
    method_class,
    method_names,
    register,
)
from .offpolicy import OffPolicyMethod, TD3Networks

__all__ = [
    "Method",
    "Minibatch",
    "OffPolicyMethod",
    "PolicyStep",
    "RobustAdversary",
    "TD3Networks",
    "TrainingAdversary",
    "method_class",
    "method_names",
    "register",
]
