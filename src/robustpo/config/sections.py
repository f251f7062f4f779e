"""Training configuration: the PPO core, the method's own section, run management.

A run's config is a :class:`TrainConfig`: ``algo``, ``env``, ``seed`` and the task's
``attack_eps`` at the top, then three sections, each a dataclass whose fields document their
meaning, unit and source (``robustpo train --dry-run`` prints them):

- the learner's section: ``ppo`` (:class:`PPOConfig`, the PPO (= SPO) recipe every method
  of the PPO family shares) or ``td3`` (:class:`TD3Config`, the off-policy family's);
- ``method``: the training method's section, a subclass of :class:`MethodConfig` declared by
  the method's training adversary (:mod:`robustpo.adversaries`);
- ``run``: :class:`RunConfig`, checkpoints and simulator backend (no effect on the result
  except ``vector_mode`` ``envpool``).

Values are resolved by :mod:`robustpo.training.presets`. In YAML and ``--set``, a key is
written qualified (``ppo.policy_lr``) or bare when only one section has it (``policy_lr``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..core.envs import VECTOR_MODES
from ..core.nets import HIDDEN_DTYPES
from ..errors import ConfigError

INNER_SOLVERS = ("sgld", "pgd")


def setting(default: Any, doc: str) -> Any:
    """A dataclass field with its documentation (meaning, unit, source) in its metadata."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def field_docs(section: Any) -> dict[str, str]:
    """``{field name: documentation}`` of a config dataclass (class or instance)."""
    return {f.name: f.metadata.get("doc", "") for f in fields(section)}


@dataclass
class PPOConfig:
    """The PPO recipe (Schulman et al. 2017; Engstrom et al. 2020), defaults from REFERENCE
    section 3 (Hopper). Samples per update are ``num_envs * rollout_steps``."""

    total_steps: int = setting(2_000_000, "environment steps of the whole run (REFERENCE s3: "
                               "976 iterations x 2048 on Hopper)")
    num_envs: int = setting(8, "environment copies stepped together; the reference code "
                            "bases use 1 x 2048, robustpo 8 x 256 for the same batch")
    rollout_steps: int = setting(256, "steps per copy and iteration")
    epochs: int = setting(10, "passes over each batch (REFERENCE s3)")
    minibatches: int = setting(32, "minibatches per pass (REFERENCE s3)")
    gamma: float = setting(0.99, "discount factor (REFERENCE s3)")
    gae_lambda: float = setting(0.95, "GAE lambda (Schulman et al. 2016; REFERENCE s3)")
    clip_eps: float = setting(0.2, "ratio clipping range of the surrogate (REFERENCE s3)")
    policy_lr: float = setting(3e-4, "Adam learning rate of the policy (REFERENCE s3 table)")
    value_lr: float = setting(2.5e-4, "Adam learning rate of the value network (REFERENCE s3)")
    adam_eps: float = setting(1e-5, "Adam epsilon (REFERENCE s3)")
    anneal_lr: bool = setting(True, "anneal both learning rates linearly to 0 (REFERENCE s3)")
    value_clip: bool = setting(False, "clip the value update around the old value by "
                               "clip_eps (OpenAI baselines; off for Hopper, REFERENCE s3)")
    entropy_coef: float = setting(0.0, "entropy bonus weight (REFERENCE s3: 0; HalfCheetah "
                                  "1e-4)")
    norm_adv: bool = setting(True, "normalise advantages per minibatch (as the reference "
                             "code bases)")
    max_grad_norm: float | None = setting(None, "global gradient-norm clip; null: none "
                                          "(the reference code bases do not clip)")
    analytic_grads: bool = setting(True, "closed-form gradients where the method provides "
                                   "them (about 3x faster); false: autograd")
    init_std: float = setting(1.0, "initial policy std, action units (REFERENCE s3: 1.0; "
                              "HalfCheetah 0.5)")
    hidden: list[int] = setting([64, 64], "hidden sizes of the tanh policy and "  # noqa: RUF009
                                "value MLPs (REFERENCE s3)")  # setting() copies the list
    obs_clip: float = setting(10.0, "bound of the normalised observation (REFERENCE s3)")
    reward_clip: float = setting(10.0, "bound of the scaled reward (REFERENCE s3)")

    @property
    def batch_size(self) -> int:
        """Samples per update, ``num_envs * rollout_steps``."""
        return self.num_envs * self.rollout_steps

    @property
    def minibatch_size(self) -> int:
        """Samples per minibatch."""
        return self.batch_size // self.minibatches

    @property
    def iterations(self) -> int:
        """PPO iterations of the run, ``total_steps // batch_size``."""
        return self.total_steps // self.batch_size

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad key."""
        positive = ["total_steps", "num_envs", "rollout_steps", "epochs", "minibatches",
                    "policy_lr", "value_lr", "adam_eps", "init_std", "obs_clip", "reward_clip"]
        check_positive(self, positive, "ppo")
        for key in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"Config key 'ppo.{key}' must lie in [0, 1], got "
                                  f"{getattr(self, key)}.")
        if not 0.0 < self.clip_eps < 1.0:
            raise ConfigError(f"Config key 'ppo.clip_eps' must lie in (0, 1), got "
                              f"{self.clip_eps}.")
        if not self.entropy_coef >= 0:
            raise ConfigError(f"Config key 'ppo.entropy_coef' must be >= 0, got "
                              f"{self.entropy_coef}.")
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
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ConfigError(
                f"hidden must be a non-empty list of positive sizes, got {self.hidden}."
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError("max_grad_norm must be > 0, or null to disable gradient clipping.")


@dataclass
class TD3Config:
    """The TD3 recipe (Fujimoto, van Hoof, Meger, ICML 2018, "Addressing Function Approximation
    Error in Actor-Critic Methods"), defaults from the authors' code (REFERENCE section 5).
    One gradient step per environment step; an iteration is ``iteration_steps`` environment
    steps with their gradient steps. Noise scales are fractions of each action dimension's
    half-range (the paper's units for actions in [-1, 1])."""

    total_steps: int = setting(1_000_000, "environment steps of the whole run (the field's "
                               "standard 1M)")
    num_envs: int = setting(1, "environment copies stepped together; each vector step is "
                            "followed by num_envs gradient steps (one per transition)")
    iteration_steps: int = setting(1000, "environment steps per iteration (checkpoints, "
                                   "logs); a multiple of num_envs")
    learning_starts: int = setting(25_000, "initial steps of uniformly random actions, "
                                   "before any gradient step (author code; paper 10,000)")
    buffer_size: int = setting(1_000_000, "replay buffer capacity, transitions")
    batch_size: int = setting(256, "transitions per gradient step (author code; paper 100)")
    gamma: float = setting(0.99, "discount factor")
    tau: float = setting(0.005, "Polyak rate of the target networks")
    actor_lr: float = setting(3e-4, "Adam learning rate of the actor")
    critic_lr: float = setting(3e-4, "Adam learning rate of the twin critics")
    policy_delay: int = setting(2, "critic updates per actor and target update")
    exploration_noise: float = setting(0.1, "std of the Gaussian exploration noise, "
                                       "fraction of the half-range")
    target_noise: float = setting(0.2, "std of the target policy smoothing noise, fraction "
                                  "of the half-range")
    target_noise_clip: float = setting(0.5, "bound of the smoothing noise, fraction of the "
                                       "half-range")
    hidden: list[int] = setting([256, 256], "hidden sizes of the ReLU actor and "  # noqa: RUF009
                                "critics (author code; paper 400-300)")
    normalize_obs: bool = setting(False, "a running observation normaliser inside the agent "
                                  "(the TD3 recipe has none: off)")
    obs_clip: float = setting(10.0, "bound of the normalised observation when normalize_obs")
    hidden_dtype: str = setting("float32", "dtype of the hidden-to-hidden matrix products of "
                                "the actor and critics: float32, or bfloat16 (faster on CPUs "
                                "with native bf16 products, slower elsewhere)")

    @property
    def iterations(self) -> int:
        """Iterations of the run, ``total_steps // iteration_steps``."""
        return self.total_steps // self.iteration_steps

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad key."""
        check_positive(self, ["total_steps", "num_envs", "iteration_steps", "buffer_size",
                              "batch_size", "actor_lr", "critic_lr", "policy_delay",
                              "obs_clip"], "td3")
        check_nonnegative(self, ["learning_starts", "exploration_noise", "target_noise",
                                 "target_noise_clip"], "td3")
        for key in ("gamma", "tau"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"Config key 'td3.{key}' must lie in [0, 1], got "
                                  f"{getattr(self, key)}.")
        if self.iteration_steps % self.num_envs:
            raise ConfigError(f"td3.iteration_steps = {self.iteration_steps} is not a multiple "
                              f"of td3.num_envs = {self.num_envs}.")
        if self.iterations < 1:
            raise ConfigError(f"total_steps = {self.total_steps} is smaller than one iteration "
                              f"(td3.iteration_steps = {self.iteration_steps}); raise --steps.")
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ConfigError(
                f"hidden must be a non-empty list of positive sizes, got {self.hidden}.")
        if self.hidden_dtype not in HIDDEN_DTYPES:
            raise ConfigError(f"Config key 'td3.hidden_dtype' must be one of "
                              f"{sorted(HIDDEN_DTYPES)}, got {self.hidden_dtype!r}.")


LEARNER_SECTIONS: dict[str, type] = {"ppo": PPOConfig, "td3": TD3Config}
"""The learner section of each learner: a config holds the one of its method's learner."""


@dataclass
class MethodConfig:
    """Base of a training method's config section (SPO has no field of its own)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad key (subclasses extend it)."""


@dataclass
class RobustMethodConfig(MethodConfig):
    """Fields shared by the methods that search the eps-ball during training: the eps
    schedule and the inner solver (REFERENCE section 3)."""

    nonnegative_fields: ClassVar[tuple[str, ...]] = ("sgld_beta",)  # checked by validate
    positive_fields: ClassVar[tuple[str, ...]] = ("inner_steps",)

    eps_ramp: float = setting(0.75, "fraction of the iterations over which the training eps "
                              "ramps linearly from 0 to attack_eps (REFERENCE s3: 732 of 976)")
    inner_solver: str = setting("sgld", "inner solver: sgld (noisy sign steps) or pgd "
                                "(sign steps from a uniform random start)")
    inner_steps: int = setting(10, "inner solver steps, each eps / inner_steps (REFERENCE s3)")
    sgld_beta: float = setting(1e-5, "SGLD inverse temperature (SA_PPO code; REFERENCE s3)")

    def validate(self) -> None:
        if not 0.0 <= self.eps_ramp <= 1.0:
            raise ConfigError(f"Config key 'method.eps_ramp' must lie in [0, 1], got "
                              f"{self.eps_ramp}.")
        if self.inner_solver not in INNER_SOLVERS:
            raise ConfigError(f"Config key 'method.inner_solver' must be one of "
                              f"{', '.join(INNER_SOLVERS)}, got {self.inner_solver!r}.")
        check_positive(self, list(self.positive_fields), "method")
        check_nonnegative(self, list(self.nonnegative_fields), "method")


@dataclass
class RunConfig:
    """Run management: checkpoints, simulator backend, threads, evaluations during training."""

    checkpoint_every: int = setting(10, "iterations between checkpoints")
    keep_checkpoints: int = setting(3, "newest checkpoints kept in RUN/checkpoints")
    vector_mode: str = setting("thread", "environment backend: thread (default), sync, async "
                               "(identical trajectories) or envpool (C++, own initial states)")
    torch_threads: int = setting(1, "torch intra-op threads (1 is fastest for 64-64 MLPs)")
    eval_every: int = setting(0, "environment steps between evaluations of the deterministic "
                              "policy on fresh episodes (metrics.csv eval_return); 0: none")
    eval_episodes: int = setting(10, "episodes per evaluation (seeds seed+100 onwards)")
    keep_best: bool = setting(False, "with eval_every: the run's agent is the policy of the "
                              "best evaluation (recorded in its agent.json); the last one goes "
                              "to RUN/last/")
    select_episodes: int = setting(0, "with keep_best: > 0 evaluates the best-evaluated and "
                                   "the last policy again on this many fresh episodes (seeds "
                                   "200,000 onwards) and keeps the higher mean as the agent")

    def validate(self) -> None:
        check_positive(self, ["checkpoint_every", "keep_checkpoints", "torch_threads",
                              "eval_episodes"], "run")
        check_nonnegative(self, ["eval_every", "select_episodes"], "run")
        if self.keep_best and not self.eval_every:
            raise ConfigError("Config key 'run.keep_best' needs evaluations to choose from: "
                              "set run.eval_every (e.g. --set eval_every=5000).")
        if self.vector_mode not in VECTOR_MODES:
            raise ConfigError(f"Config key 'run.vector_mode' must be one of "
                              f"{', '.join(VECTOR_MODES)}, got {self.vector_mode!r}.")


@dataclass
class TrainConfig:
    """A run's whole config (module docstring)."""

    algo: str = setting("ppo", "training method (robustpo list)")
    env: str = setting("Hopper-v5", "Gymnasium environment id")
    seed: int = setting(0, "random seed: the same seed and config give the same parameters")
    attack_eps: float = setting(0.075, "the task's l_inf eps-ball radius, normalised "
                                "observation units: robust methods train against it and "
                                "attacks use it by default (REFERENCE s3 table)")
    ppo: PPOConfig | None = field(default_factory=PPOConfig)
    td3: TD3Config | None = None
    method: MethodConfig = field(default_factory=MethodConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def learner_section(self) -> str:
        """Name of the learner section this config holds (``ppo`` or ``td3``).

        Raises:
            ConfigError: the config holds none or both.
        """
        held = [name for name in LEARNER_SECTIONS if getattr(self, name) is not None]
        if len(held) != 1:
            raise ConfigError(f"A config holds exactly one learner section "
                              f"({', '.join(LEARNER_SECTIONS)}); this one holds "
                              f"{held or 'none'}.")
        return held[0]

    @property
    def learner_config(self) -> Any:
        """The learner section (:class:`PPOConfig` or :class:`TD3Config`)."""
        return getattr(self, self.learner_section)

    @property
    def total_steps(self) -> int:
        """The learner section's ``total_steps``: environment steps of the whole run."""
        return self.learner_config.total_steps

    def with_total_steps(self, steps: int) -> TrainConfig:
        """A validated copy whose learner section has ``total_steps = steps``.

        Raises:
            ConfigError: ``steps`` is smaller than one iteration of the learner.
        """
        section = dataclasses.replace(self.learner_config, total_steps=steps)
        return dataclasses.replace(self, **{self.learner_section: section}).validate()

    def validate(self) -> TrainConfig:
        """Check every section; return self. Raises :class:`ConfigError`."""
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ConfigError(f"The seed must be an integer >= 0, got {self.seed!r}.")
        if not (isinstance(self.attack_eps, float) and self.attack_eps >= 0):
            raise ConfigError(f"Config key 'attack_eps' must be a number >= 0, got "
                              f"{self.attack_eps!r}.")
        self.learner_config.validate()
        self.method.validate()
        self.run.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: top-level keys, then the learner section (``ppo`` or ``td3``),
        ``method`` and ``run`` mappings."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if not (k in LEARNER_SECTIONS and v is None)}


SECTIONS = (*LEARNER_SECTIONS, "method", "run")
TOP_LEVEL = ("algo", "env", "seed", "attack_eps")


def check_positive(section: Any, keys: list[str], prefix: str) -> None:
    """Raise :class:`ConfigError` naming ``prefix.key`` unless each key's value is > 0."""
    for key in keys:
        value = getattr(section, key)
        if not value > 0:
            raise ConfigError(f"Config key '{prefix}.{key}' must be > 0, got {value!r}.")


def check_nonnegative(section: Any, keys: list[str], prefix: str) -> None:
    """Raise :class:`ConfigError` naming ``prefix.key`` unless each key's value is >= 0."""
    for key in keys:
        value = getattr(section, key)
        if not value >= 0:
            raise ConfigError(f"Config key '{prefix}.{key}' must be >= 0, got {value!r}.")


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the dataclass type ``hint``; ints are accepted for floats.

    Raises:
        ConfigError: the value does not have the field's type, or is a NaN or infinite
            float.
    """
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
    if hint is float and isinstance(value, str):
        with contextlib.suppress(ValueError):  # YAML 1.1 reads "1e-4" (no dot) as a string
            value = float(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # no setting has a meaning at NaN or infinity
            raise ConfigError(f"Config key {key!r} must be a finite number, got {value!r}.")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(
        f"Config key {key!r} expects {getattr(hint, '__name__', hint)}, got {value!r}."
    )


def field_types(section: type) -> dict[str, Any]:
    """``{field name: type}`` of a config dataclass, with string annotations resolved."""
    hints = typing.get_type_hints(section)
    return {f.name: hints[f.name] for f in fields(section)}
