"""Training configuration: one dataclass, per-environment YAML presets, ``key=value`` overrides.

Resolution order: dataclass defaults < preset file (``presets/<algo>-<env>.yaml`` or an explicit
``--preset FILE``) < ``--set key=value`` overrides < explicit arguments (env, seed, steps).
The resolved config is written to every run directory as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UnknownNameError

ALGORITHMS = ("ppo", "sappo", "carppo", "barppo")
INNER_SOLVERS = ("sgld", "pgd")
ROBUST_STD_GRADS = ("perturbed", "clean")


@dataclass
class PPOConfig:
    """Hyperparameters of PPO (= SPO), defaults from REFERENCE section 3 (Hopper).

    Samples per update are ``num_envs * rollout_steps`` (2048 by default, as in the reference
    code bases, which use one environment; several environments let the policy act on a batch).
    ``total_steps`` counts environment steps; the number of PPO iterations is
    ``total_steps // (num_envs * rollout_steps)``.

    Robust training (``algo`` sappo, carppo, barppo; :mod:`robustpo.robust`) trains against
    the eps-ball of radius ``attack_eps`` (normalised units), ramped linearly from 0 over the
    first ``eps_ramp`` fraction of the iterations; ``inner_solver`` (sgld or pgd) takes
    ``inner_steps`` sign steps of ``eps / inner_steps`` (SGLD inverse temperature
    ``sgld_beta``). ``kappa`` is SA-PPO's KL-regulariser weight, and for CAR-PPO and BAR-PPO
    the weight of the clean PPO surrogate (SPO guidance); ``car_reg`` and ``car_lambda`` are
    CAR-PPO's robust-loss weight and soft-weighting temperature (REFERENCE section 3).
    ``robust_std_grad`` says where the robust surrogate's log-std gradient is taken: at the
    perturbed states (``perturbed``, the literal loss, as in CAR-RL's code) or at the clean
    states (``clean``): the log-std is state-independent, so an observation perturbation
    cannot move it, and the literal form inflates it (docs/results.md, "sigma inflation").
    """

    algo: str = "ppo"
    env: str = "Hopper-v5"
    seed: int = 0
    total_steps: int = 2_000_000
    num_envs: int = 8
    rollout_steps: int = 256
    epochs: int = 10
    minibatches: int = 32
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    policy_lr: float = 3e-4
    value_lr: float = 2.5e-4
    adam_eps: float = 1e-5
    anneal_lr: bool = True
    value_clip: bool = False
    entropy_coef: float = 0.0
    norm_adv: bool = True
    max_grad_norm: float | None = None
    analytic_grads: bool = True
    init_std: float = 1.0
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    obs_clip: float = 10.0
    reward_clip: float = 10.0
    attack_eps: float = 0.075
    eps_ramp: float = 0.75
    kappa: float = 0.0
    car_reg: float = 0.3
    car_lambda: float = 1000.0
    inner_solver: str = "sgld"
    inner_steps: int = 10
    robust_std_grad: str = "perturbed"
    sgld_beta: float = 1e-5
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    vector_mode: str = "thread"
    torch_threads: int = 1

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.minibatches

    @property
    def iterations(self) -> int:
        return self.total_steps // self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> PPOConfig:
        """Check ranges and combinations; raise :class:`ConfigError` naming the bad key."""
        if self.algo not in ALGORITHMS:
            raise UnknownNameError("algorithm", self.algo, list(ALGORITHMS))
        positive = ["total_steps", "num_envs", "rollout_steps", "epochs", "minibatches",
                    "policy_lr", "value_lr", "adam_eps", "init_std", "obs_clip", "reward_clip",
                    "checkpoint_every", "keep_checkpoints", "torch_threads"]
        for key in positive:
            if not getattr(self, key) > 0:
                raise ConfigError(f"Config key {key!r} must be > 0, got {getattr(self, key)!r}.")
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"Config key {key!r} must lie in [0, 1], got {getattr(self, key)}."
                )
        if not 0.0 < self.clip_eps < 1.0:
            raise ConfigError(f"Config key 'clip_eps' must lie in (0, 1), got {self.clip_eps}.")
        if self.batch_size % self.minibatches:
            raise ConfigError(
                f"num_envs * rollout_steps = {self.batch_size} is not divisible by minibatches = "
                f"{self.minibatches}; choose values so that every minibatch has the same size."
            )
        if self.iterations < 1:
            raise ConfigError(
                f"total_steps = {self.total_steps} is smaller than one PPO batch "
                f"(num_envs * rollout_steps = {self.batch_size}); raise --steps."
            )
        if self.vector_mode not in ("thread", "sync", "async", "envpool"):
            raise ConfigError(
                f"vector_mode must be 'thread', 'sync', 'async' or 'envpool', got "
                f"{self.vector_mode!r}."
            )
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ConfigError(
                f"hidden must be a non-empty list of positive sizes, got {self.hidden}."
            )
        if self.inner_solver not in INNER_SOLVERS:
            raise ConfigError(
                f"inner_solver must be one of {', '.join(INNER_SOLVERS)}, got "
                f"{self.inner_solver!r}."
            )
        if self.robust_std_grad not in ROBUST_STD_GRADS:
            raise ConfigError(
                f"robust_std_grad must be one of {', '.join(ROBUST_STD_GRADS)}, got "
                f"{self.robust_std_grad!r}."
            )
        for key in ("attack_eps", "kappa", "car_reg", "sgld_beta"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"Config key {key!r} must be >= 0, got {getattr(self, key)!r}.")
        if not (self.car_lambda > 0 and self.inner_steps > 0 and 0.0 <= self.eps_ramp <= 1.0):
            raise ConfigError(
                "Config keys need car_lambda > 0, inner_steps > 0 and eps_ramp in [0, 1]; got "
                f"{self.car_lambda}, {self.inner_steps}, {self.eps_ramp}."
            )
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError("max_grad_norm must be > 0, or null to disable gradient clipping.")
        return self


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(PPOConfig)
    return {f.name: hints[f.name] for f in fields(PPOConfig)}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the dataclass type ``hint``; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise ConfigError(f"Config key {key!r} must be a list of integers, got {value!r}.")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Config key {key!r} must be true or false, got {value!r}.")
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(
        f"Config key {key!r} expects {getattr(hint, '__name__', hint)}, got {value!r}."
    )


def apply_overrides(cfg: PPOConfig, values: dict[str, Any], source: str) -> PPOConfig:
    """Return ``cfg`` with ``values`` applied; unknown keys raise :class:`ConfigError`."""
    types_ = _field_types()
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {', '.join(unknown)} in {source}. "
            f"Valid keys: {', '.join(types_)}."
        )
    coerced = {k: _coerce(k, v, types_[k]) for k, v in values.items()}
    return dataclasses.replace(cfg, **coerced)


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """Parse ``["key=value", ...]``; values are read as YAML (``1e-4``, ``true``, ``[64, 64]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}.")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc}).") from None
    return out


def preset_names() -> list[str]:
    """Names of the bundled presets, e.g. ``ppo-Hopper-v5``."""
    files = resources.files("robustpo") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_yaml_mapping(path: Path | str, what: str) -> dict[str, Any]:
    """Read a YAML file holding a mapping; raise :class:`ConfigError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The {what} file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"The {what} file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"The {what} file {path} must hold a mapping of config keys to values.")
    return data


def _bundled_preset_path(name: str) -> Path:
    return Path(str(resources.files("robustpo") / "presets" / f"{name}.yaml"))


def _preset_values(path: Path, depth: int = 0) -> dict[str, Any]:
    """A preset's values; ``inherit: NAME`` first loads the bundled preset NAME (so a robust
    preset holds only what differs from the PPO preset of its environment)."""
    values = load_yaml_mapping(path, "preset")
    parent = values.pop("inherit", None)
    if parent is None:
        return values
    if str(parent) not in preset_names() or depth > 5:
        raise UnknownNameError("preset", str(parent), preset_names())
    return {**_preset_values(_bundled_preset_path(str(parent)), depth + 1), **values}


def resolve_config(
    algo: str = "ppo",
    env: str = "Hopper-v5",
    *,
    preset: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    total_steps: int | None = None,
) -> PPOConfig:
    """Build and validate the config for ``algo`` on ``env``.

    If ``preset`` is None, the bundled ``<algo>-<env>`` preset is used when it exists (else the
    dataclass defaults). ``preset`` may be a bundled preset name or a YAML file path.

    Raises:
        UnknownNameError: unknown algorithm or preset name.
        ConfigError: unknown key, wrong type or out-of-range value.
    """
    if algo not in ALGORITHMS:
        raise UnknownNameError("algorithm", algo, list(ALGORITHMS))
    cfg = PPOConfig(algo=algo, env=env)
    if preset is None and f"{algo}-{env}" in preset_names():
        preset = f"{algo}-{env}"
    if preset is not None:
        if str(preset) in preset_names():
            path = _bundled_preset_path(str(preset))
        elif str(preset).endswith((".yaml", ".yml")) or Path(preset).exists():
            path = Path(preset)
        else:
            raise UnknownNameError("preset", str(preset), preset_names())
        cfg = apply_overrides(cfg, _preset_values(path), f"preset {path}")
    cfg = dataclasses.replace(cfg, algo=algo, env=env)
    if overrides:
        cfg = apply_overrides(cfg, overrides, "--set")
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    if total_steps is not None:
        cfg = dataclasses.replace(cfg, total_steps=total_steps)
    return cfg.validate()


def config_from_dict(data: dict[str, Any], source: str) -> PPOConfig:
    """Rebuild a config saved in a run directory; unknown keys mean an incompatible run."""
    return apply_overrides(PPOConfig(), data, source).validate()
