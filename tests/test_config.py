"""Config: sections per method, presets for every method and featured task, provenance, and
errors for every bad input."""

import dataclasses

import pytest

from robustpo.adversaries import method_class, method_names
from robustpo.config.sections import SECTIONS, field_docs
from robustpo.errors import ConfigError, UnknownNameError
from robustpo.learners.ppo import PPOLearner
from robustpo.training.presets import (
    config_from_dict,
    describe,
    parse_set_options,
    preset_names,
    resolve_config,
    resolve_config_with_sources,
)

from .test_cli import run_cli

FEATURED = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")


def test_presets_hold_reference_values():
    hopper = resolve_config("ppo", "Hopper-v5")
    assert (hopper.ppo.policy_lr, hopper.ppo.value_lr, hopper.attack_eps) == (3e-4, 2.5e-4, 0.075)
    assert hopper.ppo.batch_size == 2048 and hopper.ppo.iterations == 976
    assert not hopper.ppo.value_clip
    cheetah = resolve_config("ppo", "HalfCheetah-v5")
    assert (cheetah.ppo.policy_lr, cheetah.ppo.value_lr, cheetah.ppo.init_std) == (1e-4, 1e-3, 0.5)
    assert cheetah.ppo.entropy_coef == 1e-4 and cheetah.attack_eps == 0.15
    assert resolve_config("ppo", "Ant-v5").ppo.iterations == 4882
    sa = resolve_config("sappo", "Walker2d-v5")
    assert (sa.method.kappa, sa.method.inner_solver, sa.attack_eps, sa.ppo.policy_lr) == (
        0.1, "sgld", 0.05, 4e-4)
    # SA_PPO's released configs leave sigma attached in the KL term (REFERENCE s3)
    assert all(resolve_config("sappo", env).method.sigma_grad for env in FEATURED)
    car = resolve_config("carppo", "Hopper-v5")
    assert (car.method.kappa, car.method.car_reg, car.method.car_lambda,
            car.method.inner_solver) == (1.0, 0.3, 1000.0, "pgd")


@pytest.mark.parametrize("algo", ["ppo", "sappo", "carppo", "barppo"])
@pytest.mark.parametrize("env", FEATURED)
def test_every_method_has_a_preset_on_every_featured_task(algo, env):
    assert f"{algo}-{env}" in preset_names()
    cfg, sources = resolve_config_with_sources(algo, env)
    ppo = resolve_config("ppo", env)
    assert cfg.ppo == ppo.ppo and cfg.attack_eps == ppo.attack_eps  # the task's PPO recipe
    assert isinstance(cfg.method, method_class(algo).config_class)
    if algo != "ppo":  # the method's own values come from its preset, never from Hopper's
        assert sources["method.kappa"] == f"preset {algo}-{env}"


def test_a_missing_preset_is_an_error_unless_defaults_are_asked_for():
    with pytest.raises(ConfigError, match="No preset for barppo on Swimmer-v5.*--preset defaults"):
        resolve_config("barppo", "Swimmer-v5")
    cfg = resolve_config("barppo", "Swimmer-v5", preset="defaults")
    assert cfg.method.kappa == 0.3 and cfg.env == "Swimmer-v5"


def test_overrides_are_typed_checked_and_qualified():
    cfg = resolve_config("ppo", "Hopper-v5", overrides=parse_set_options(
        ["policy_lr=1e-4", "hidden=[32, 32]", "ppo.value_clip=true", "max_grad_norm=0.5",
         "run.checkpoint_every=5"]))
    assert cfg.ppo.policy_lr == 1e-4 and cfg.ppo.hidden == [32, 32] and cfg.ppo.value_clip
    assert cfg.run.checkpoint_every == 5
    with pytest.raises(ConfigError, match="'ppo.epochs' expects int"):
        resolve_config("ppo", "Hopper-v5", overrides={"epochs": "many"})
    with pytest.raises(ConfigError, match="not divisible by minibatches"):
        resolve_config("ppo", "Hopper-v5", overrides={"minibatches": 7})
    with pytest.raises(ConfigError, match="expects key=value"):
        parse_set_options(["policy_lr"])
    with pytest.raises(ConfigError, match="'method.kappa' must be >= 0"):
        resolve_config("barppo", "Hopper-v5", overrides={"kappa": -1})
    with pytest.raises(UnknownNameError, match="Unknown preset"):
        resolve_config("ppo", "Hopper-v5", preset="nonexistent")
    for value in ("inf", ".inf", "nan", "-inf"):
        with pytest.raises(ConfigError, match="must be a finite number"):
            resolve_config("ppo", "Hopper-v5",
                           overrides=parse_set_options([f"policy_lr={value}"]))
    with pytest.raises(ConfigError, match="'attack_eps' must be a finite number"):
        resolve_config("ppo", "Hopper-v5", overrides=parse_set_options(["attack_eps=.inf"]))


def test_unknown_method_and_keys_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="Unknown algorithm 'dqn'. Valid algorithms are: "
                                               "ppo, sappo, carppo, barppo"):
        resolve_config("dqn", "Hopper-v5")
    # kappa is a key of the robust methods' sections, not of PPO's
    with pytest.raises(ConfigError, match="Unknown config key 'kappa'.*for algorithm 'ppo'"):
        resolve_config("ppo", "Hopper-v5", overrides={"kappa": 1.0})
    with pytest.raises(ConfigError, match="Unknown config key 'ppo.kappa'"):
        resolve_config("barppo", "Hopper-v5", overrides={"ppo.kappa": 1.0})


def test_every_field_is_documented():
    for algo in method_names():  # with the plug-ins other tests register
        cfg = resolve_config(algo, "Hopper-v5", preset="defaults")
        for section in (cfg, cfg.learner_config, cfg.method, cfg.run):
            docs = field_docs(section)
            missing = [k for k, v in docs.items() if len(v) < 10]
            assert not [m for m in missing if m not in SECTIONS], (algo, missing)


def test_sources_say_where_each_value_came_from():
    cfg, sources = resolve_config_with_sources("barppo", "Walker2d-v5", seed=3,
                                               overrides={"kappa": 0.5})
    rows = {key: (value, source) for key, value, source, _ in describe(cfg, sources)}
    assert rows["method.kappa"] == ("0.5", "--set")
    assert rows["ppo.policy_lr"] == ("0.0004", "preset ppo-Walker2d-v5")  # inherited
    assert rows["method.inner_steps"] == ("10", "preset barppo-Walker2d-v5")
    assert rows["seed"] == ("3", "argument")
    assert rows["ppo.gamma"] == ("0.99", "default")


def test_saved_configs_round_trip_and_old_flat_configs_still_read():
    cfg = resolve_config("carppo", "Hopper-v5", overrides={"kappa": 0.0})
    assert config_from_dict(cfg.to_dict(), "test") == cfg
    flat = {"algo": "barppo", "env": "Hopper-v5", "seed": 4, "kappa": 0.3, "car_reg": 0.3,
            "policy_lr": 3e-4, "num_envs": 8, "attack_eps": 0.075, "vector_mode": "thread"}
    old = config_from_dict(flat, "v0.2 run")
    assert (old.method.kappa, old.seed, old.run.vector_mode) == (0.3, 4, "thread")
    with pytest.raises(ConfigError, match="Unknown config key 'bogus'"):
        config_from_dict({**flat, "bogus": 1}, "v0.2 run")
    # a run written before sigma_grad existed held sigma fixed, whatever the presets say now
    sappo = config_from_dict({**flat, "algo": "sappo", "kappa": 1.0}, "v0.2 run")
    assert not sappo.method.sigma_grad


def test_dry_run_prints_the_resolved_config_and_sources():
    code, out = run_cli("train", "--algo", "sappo", "--env", "Ant-v5", "--set", "kappa=0.01",
                        "--dry-run")
    assert code == 0, out
    assert "method.kappa" in out and "--set" in out and "preset ppo-Ant-v5" in out
    code, out = run_cli("train", "--algo", "barppo", "--env", "Swimmer-v5", "--dry-run")
    assert code == 2 and "No preset for barppo on Swimmer-v5" in " ".join(out.split())
    assert "Traceback" not in out


def test_configs_built_by_hand_are_checked():
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        resolve_config("ppo", "Hopper-v5", seed=-1)
    cfg = dataclasses.replace(resolve_config("ppo", "Hopper-v5"), algo="sappo")
    with pytest.raises(ConfigError, match="takes a SAPPOConfig"):
        PPOLearner(cfg)
