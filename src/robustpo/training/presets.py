"""Resolving a run's config: defaults < preset < ``--set`` overrides < explicit arguments.

Every method has a bundled preset per featured environment (``presets/<algo>-<env>.yaml``,
REFERENCE section 3 values). A missing preset is an error: a user names a preset file, or asks
for the built-in defaults (Hopper-v5's values) with ``--preset defaults``. Preset files and
``--set`` take qualified keys (``ppo.policy_lr``, ``td3.tau``, ``method.kappa``,
``run.vector_mode``) or bare keys when only one section has them; ``inherit: NAME`` loads a
bundled preset first. :func:`resolve_config_with_sources` also says where each value came
from (``--dry-run``).
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..adversaries.base import method_class
from ..config.sections import (
    LEARNER_SECTIONS,
    SECTIONS,
    TOP_LEVEL,
    RunConfig,
    TrainConfig,
    coerce,
    field_docs,
    field_types,
)
from ..core.envs import check_env_id
from ..errors import ConfigError, UnknownNameError

DEFAULTS = "defaults"  # --preset defaults: the dataclass defaults, explicitly


def preset_names() -> list[str]:
    """Names of the bundled presets, e.g. ``ppo-Hopper-v5``."""
    files = resources.files("robustpo.training") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_yaml_mapping(path: Path | str, what: str) -> dict[str, Any]:
    """Read a YAML file holding a mapping.

    Raises:
        ConfigError: missing file, invalid YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The {what} file {path} "
                          f"{'is a directory' if path.is_dir() else 'does not exist'}.")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The {what} file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"The {what} file {path} must hold a mapping of config keys to values.")
    return data


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """Parse ``["key=value", ...]``; values are read as YAML (``1e-4``, ``true``, ``[64, 64]``).

    Raises:
        ConfigError: an item without ``=`` or with a value that is not YAML.
    """
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


def _section_classes(algo: str) -> dict[str, type]:
    """The sections of ``algo``'s config: its learner's (``ppo`` or ``td3``), ``method``,
    ``run``."""
    method = method_class(algo)
    return {method.learner: LEARNER_SECTIONS[method.learner], "method": method.config_class,
            "run": RunConfig}


def _valid_keys(algo: str) -> list[str]:
    keys = [k for k in TOP_LEVEL if k not in ("algo", "env")]
    for section, cls in _section_classes(algo).items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def qualify(key: str, algo: str, source: str) -> str:
    """The qualified name (``section.field`` or a top-level key) of ``key`` for ``algo``.

    Raises:
        ConfigError: unknown or ambiguous key (the message lists the valid ones).
    """
    sections = _section_classes(algo)
    if key in ("algo", "env"):
        raise ConfigError(f"{source}: {key!r} cannot be set there; choose it with --{key}.")
    if key in TOP_LEVEL:
        return key
    section, dot, name = key.partition(".")
    if dot:
        if section in sections and name in field_types(sections[section]):
            return key
        matches = []
    else:
        matches = [s for s, cls in sections.items() if key in field_types(cls)]
    if len(matches) == 1:
        return f"{matches[0]}.{key}"
    raise ConfigError(
        f"Unknown config key {key!r} in {source} for algorithm {algo!r}. Valid keys: "
        f"{', '.join(_valid_keys(algo))}. `robustpo train --algo {algo} --dry-run` lists them "
        f"with their meaning.")


def _flatten(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Nested section mappings (``ppo: {policy_lr: ...}``) -> ``{"ppo.policy_lr": ...}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {key!r} must be a mapping of keys.")
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _bundled_preset_path(name: str) -> Path:
    return Path(str(resources.files("robustpo.training") / "presets" / f"{name}.yaml"))


def _preset_values(path: Path, algo: str, depth: int = 0) -> dict[str, tuple[Any, str]]:
    """A preset's values by qualified key, each with the preset that set it; ``inherit: NAME``
    first loads bundled preset NAME."""
    values = load_yaml_mapping(path, "preset")
    parent = values.pop("inherit", None)
    bundled = path.parent == _bundled_preset_path("x").parent
    label = f"preset {path.stem}" if bundled else f"preset {path}"
    own = {qualify(k, algo, label): (v, label) for k, v in _flatten(values, label).items()}
    if parent is None:
        return own
    if str(parent) not in preset_names() or depth > 5:
        raise UnknownNameError("preset", str(parent), preset_names())
    return {**_preset_values(_bundled_preset_path(str(parent)), algo, depth + 1), **own}


def _preset_path(algo: str, env: str, preset: str | Path | None) -> Path | None:
    if preset is None:
        name = f"{algo}-{env}"
        if name not in preset_names():
            raise ConfigError(
                f"No preset for {algo} on {env}: robustpo has bundled presets for "
                f"{', '.join(preset_names())}. Pass --preset FILE (a YAML file of config keys; "
                f"see `robustpo train --algo {algo} --env Hopper-v5 --dry-run`), or "
                f"--preset defaults to train with the built-in defaults (Hopper-v5's values).")
        return _bundled_preset_path(name)
    if str(preset) == DEFAULTS:
        return None
    if str(preset) in preset_names():
        return _bundled_preset_path(str(preset))
    if str(preset).endswith((".yaml", ".yml")) or Path(preset).exists():
        return Path(preset)
    raise UnknownNameError("preset", str(preset), [DEFAULTS, *preset_names()])


def build_config(algo: str, env: str, values: dict[str, Any]) -> TrainConfig:
    """A validated :class:`TrainConfig` from defaults and ``values`` by qualified key.

    Raises:
        UnknownNameError: unknown algorithm. ConfigError: a wrong type or an out-of-range value.
    """
    sections = _section_classes(algo)
    top = {k: coerce(k, values[k], field_types(TrainConfig)[k]) for k in TOP_LEVEL
           if k in values and k not in ("algo", "env")}
    parts = {}
    for section, cls in sections.items():
        types_ = field_types(cls)
        own = {k.partition(".")[2]: v for k, v in values.items() if k.startswith(section + ".")}
        parts[section] = cls(**{k: coerce(f"{section}.{k}", v, types_[k]) for k, v in own.items()})
    absent = {name: None for name in LEARNER_SECTIONS if name not in parts}
    return TrainConfig(algo=algo, env=env, **top, **parts, **absent).validate()


def resolve_config_with_sources(
    algo: str = "ppo",
    env: str = "Hopper-v5",
    *,
    preset: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    total_steps: int | None = None,
) -> tuple[TrainConfig, dict[str, str]]:
    """:func:`resolve_config` and, for each key set by something other than the defaults,
    where its value came from (``preset NAME``, ``--set``, ``argument``)."""
    method_class(algo)  # unknown names fail first, with the lists of valid ones
    check_env_id(env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = _preset_path(algo, env, preset)
    if path is not None:
        for key, (value, label) in _preset_values(path, algo).items():
            values[key], sources[key] = value, label
    for key, value in (overrides or {}).items():
        qualified = qualify(key, algo, "--set")
        values[qualified], sources[qualified] = value, "--set"
    learner = method_class(algo).learner
    for key, value in (("seed", seed), (f"{learner}.total_steps", total_steps)):
        if value is not None:
            values[key], sources[key] = value, "argument"
    return build_config(algo, env, values), sources


def resolve_config(algo: str = "ppo", env: str = "Hopper-v5", **kwargs: Any) -> TrainConfig:
    """Build and validate the config for ``algo`` on ``env`` (module docstring).

    Args:
        algo: training method (``robustpo list``).
        env: Gymnasium id.
        **kwargs: ``preset`` (a bundled preset name, a YAML file, ``"defaults"``, or None for
            the bundled ``<algo>-<env>`` preset), ``overrides`` (``{key: value}`` applied after
            the preset, qualified or bare keys), ``seed`` and ``total_steps`` (applied last).

    Raises:
        UnknownNameError: unknown algorithm, environment or preset name.
        ConfigError: no preset for ``algo`` on ``env``; unknown key; wrong type; out of range.
    """
    return resolve_config_with_sources(algo, env, **kwargs)[0]


def task_config(algo: str, env: str, **kwargs: Any) -> TrainConfig:
    """The recipe of ``algo`` on task ``env``: its bundled preset, or the algorithm's built-in
    defaults for a task without one. ``kwargs`` as :func:`resolve_config`."""
    preset = None if f"{algo}-{env}" in preset_names() else DEFAULTS
    return resolve_config(algo, env, preset=preset, **kwargs)


def task_ppo_config(env: str, **kwargs: Any) -> TrainConfig:
    """The PPO recipe of task ``env`` for the models attacks learn on it (SA-RL and PA-AD
    adversaries, robust Sarsa's Q): :func:`task_config` of PPO."""
    return task_config("ppo", env, **kwargs)


REFERENCE_UPDATE = 2048  # samples per PPO update in the learned attacks' reference code (1 x 2048)


def adversary_ppo_config(env: str, **kwargs: Any) -> TrainConfig:
    """The PPO recipe the learned attacks (SA-RL, PA-AD, the learned action adversary) train
    their adversaries with on task ``env``: the task's PPO recipe (:func:`task_ppo_config`)
    where its updates are the reference's 2,048 samples, as on the MuJoCo tasks, whose presets
    are SA-RL's per-task configs; else PPO's built-in defaults, the reference's Hopper recipe.
    The attack protocols count their budgets in the reference's updates (SA-RL's 488 of 2,048
    samples): with BipedalWalker-v3's recipe (rl-baselines3-zoo's 32 x 2,048 samples per
    update, discount 0.999) an SA-RL adversary would get 15 updates, and the scan's discount-0.99
    configurations would equal its 0.999 ones. ``kwargs`` as :func:`resolve_config`."""
    recipe = task_ppo_config(env).ppo
    assert recipe is not None
    if recipe.num_envs * recipe.rollout_steps == REFERENCE_UPDATE:
        return task_ppo_config(env, **kwargs)
    return resolve_config("ppo", env, preset=DEFAULTS, **kwargs)


def config_from_dict(data: dict[str, Any], source: str) -> TrainConfig:
    """Rebuild a config saved in a run directory or checkpoint.

    Reads the sectioned form, and the flat form of run directories written before configs
    had sections (its keys of other methods, which that form always held, are dropped).

    Raises:
        ConfigError / UnknownNameError: a key, type or value that does not fit (an
            incompatible or edited run directory).
    """
    algo, env = str(data.get("algo", "ppo")), str(data.get("env", "Hopper-v5"))
    rest = {k: v for k, v in data.items() if k not in ("algo", "env")}
    if any(k in SECTIONS for k in rest):
        values = {qualify(k, algo, source): v for k, v in _flatten(rest, source).items()}
    else:
        values = {}
        for key, value in rest.items():
            try:
                values[qualify(key, algo, source)] = value
            except ConfigError:
                if not _known_anywhere(key):
                    raise
    return build_config(algo, env, values)


def _known_anywhere(key: str) -> bool:
    """Whether a flat key belongs to some method's section (the flat form held them all)."""
    from ..adversaries.base import method_names

    return any(key in field_types(method_class(m).config_class) for m in method_names())


def describe(cfg: TrainConfig, sources: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """Rows ``(key, value, source, meaning)`` of every config field, for ``--dry-run``."""
    rows = []
    top_docs = field_docs(TrainConfig)
    for key in TOP_LEVEL:
        source = "argument" if key in ("algo", "env") else sources.get(key, "default")
        rows.append((key, repr(getattr(cfg, key)), source, top_docs[key]))
    for section in SECTIONS:
        part = getattr(cfg, section)
        if part is None:  # the other learner's section
            continue
        for name, doc in field_docs(part).items():
            key = f"{section}.{name}"
            rows.append((key, repr(getattr(part, name)), sources.get(key, "default"), doc))
    return rows
