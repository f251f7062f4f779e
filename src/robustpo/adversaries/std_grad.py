"""The ``robust_std_grad`` option shared by the methods whose loss evaluates the surrogate at
perturbed states (CAR-PPO, BAR-PPO)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.sections import RobustMethodConfig, setting
from ..errors import ConfigError

ROBUST_STD_GRADS = ("perturbed", "clean")


@dataclass
class PerturbedSurrogateConfig(RobustMethodConfig):
    """Where the perturbed surrogate's log-std gradient is taken."""

    robust_std_grad: str = setting(
        "perturbed", "log-std gradient of the perturbed surrogate: at the perturbed states "
        "(perturbed, the literal loss, as CAR-RL's code) or at the clean states (clean: sigma "
        "is state-independent; the literal form inflates it, docs/experiments/)")

    def validate(self) -> None:
        super().validate()
        if self.robust_std_grad not in ROBUST_STD_GRADS:
            raise ConfigError(f"Config key 'method.robust_std_grad' must be one of "
                              f"{', '.join(ROBUST_STD_GRADS)}, got {self.robust_std_grad!r}.")

    def tags(self) -> list[str]:
        """``["clean-std"]`` when the log-std gradient is taken at the clean states."""
        return ["clean-std"] if self.std_at_clean else []

    @property
    def std_at_clean(self) -> bool:
        """Whether the perturbed surrogate's log-std gradient is taken at the clean states."""
        return self.robust_std_grad == "clean"
