"""Errors robustpo raises on bad input or a failed run.

Every error is a :class:`RobustpoError` whose message is one paragraph saying what is wrong and
what to do. The command-line interface prints that paragraph instead of a traceback.
"""

from __future__ import annotations


class RobustpoError(Exception):
    """Base class: a problem the user can act on, described in plain words."""


class UnknownNameError(RobustpoError, ValueError):
    """An environment, algorithm, attack or preset name that robustpo does not know."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(
            f"Unknown {kind} {name!r}. Valid {kind}s are: {', '.join(valid)}. "
            f"Run `robustpo list` to see every algorithm, environment, attack and preset."
        )


class ConfigError(RobustpoError, ValueError):
    """A configuration value that is missing, of the wrong type or out of range."""


class CheckpointError(RobustpoError):
    """A run directory or checkpoint that is missing, corrupt or incompatible."""


class BusyError(RobustpoError):
    """A run directory or attack cache that another robustpo process is writing."""

    def __init__(self, what: str, lock_file: object) -> None:
        super().__init__(
            f"The {what} is in use by another robustpo process (it holds the lock {lock_file}). "
            f"Two processes writing it would overwrite each other's checkpoints. Wait for the "
            f"other process to finish (the lock is released when it exits, however it exits), "
            f"or use another directory."
        )


class NonFiniteError(RobustpoError, FloatingPointError):
    """A loss, observation or reward became NaN or infinite during training."""

    def __init__(self, quantity: str, iteration: int, last_checkpoint: str | None) -> None:
        self.quantity, self.iteration = quantity, iteration
        kept = (
            f"The last good checkpoint is kept at {last_checkpoint}; `--resume` continues from it"
            if last_checkpoint
            else "No checkpoint had been written yet"
        )
        super().__init__(
            f"Training stopped at iteration {iteration}: {quantity} became NaN or infinite. "
            f"{kept}. Common causes are a learning rate that is too high, an environment that "
            f"returns NaN, or an extreme --set override. `--resume` continues with the run's "
            f"config; to change a value (e.g. a lower learning rate), train a new run with "
            f"--set, or check the environment and resume."
        )


class PerturbationOutOfBallError(RobustpoError, AssertionError):
    """An attack returned an observation outside the l_inf eps-ball (a bug in the attack)."""

    def __init__(self, attack: str, eps: float, distance: float) -> None:
        super().__init__(
            f"Attack {attack!r} returned a perturbation with l_inf distance {distance:.6g} from "
            f"the clean normalised observation, outside the eps-ball of radius {eps:g} "
            f"(tolerance 1e-5). This is a bug in the attack: its result must be projected "
            f"with robustpo.core.perturb.project_linf."
        )


class ActionOutOfBallError(PerturbationOutOfBallError):
    """An action attack executed an action outside its ball or the action space (a bug in the
    attack)."""

    def __init__(self, attack: str, eps: float, excess: float) -> None:
        RobustpoError.__init__(
            self,
            f"Attack {attack!r} executed an action {excess:.6g} (in half-ranges) outside the "
            f"l_inf ball of radius {eps:g} half-ranges around the victim's action or outside "
            f"the action space (tolerance 1e-5). This is a bug in the attack: its result must "
            f"be clamped to robustpo.attacks.base.action_ball.")
