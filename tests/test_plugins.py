"""The extension points: a training adversary registered from outside the package trains
through the unchanged learner and driver (by autograd, with a value-loss term), and user
callbacks see every iteration."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import robustpo
from robustpo.adversaries import Minibatch, RobustAdversary, register
from robustpo.adversaries.base import surrogate_at
from robustpo.config.sections import MethodConfig, RobustMethodConfig, setting
from robustpo.core.objectives import PolicyKL
from robustpo.training.callbacks import Callback

from .conftest import TINY, tensors_equal

STEPS = 2 * 64 * 4  # 4 iterations of the tiny config


@dataclass
class ToyConfig(RobustMethodConfig):
    """A toy section: the weight of a penalty on the value of the perturbed states."""

    value_weight: float = setting(0.0, "weight of the toy value-loss term")


@register
class AutogradBARPPO(RobustAdversary):
    """BAR-PPO's loss written only as a differentiable function: no closed-form gradient."""

    name = "toy-barppo"
    display_name = "toy BAR-PPO"
    description = "BAR-PPO through autograd, registered by a test"
    config_class: ClassVar[type[MethodConfig]] = ToyConfig

    def inner_objective(self, actor, batch, clean):
        return PolicyKL(actor, clean.mean)

    def loss(self, actor, batch: Minibatch, perturbed):
        clip = self.ppo.clip_eps
        clean = surrogate_at(batch, actor(batch.obs), actor.log_std, clip).mean()
        robust = surrogate_at(batch, actor(perturbed), actor.log_std, clip).mean()
        return robust + 0.3 * clean

    def value_loss_term(self, critic, batch):
        if self.cfg.value_weight == 0:
            return None
        return self.cfg.value_weight * (critic(batch.obs) ** 2).mean()


class Recorder(Callback):
    def __init__(self):
        self.started, self.rows, self.ended = 0, [], 0

    def on_train_start(self, run):
        self.started += 1

    def on_iteration(self, run, metrics):
        self.rows.append(dict(metrics))

    def on_train_end(self, run):
        self.ended += 1


def test_a_registered_toy_adversary_trains_like_its_closed_form_twin(tmp_path):
    overrides = {**TINY, "kappa": 0.3, "attack_eps": 0.1}
    toy_overrides = {k: v for k, v in overrides.items() if k != "kappa"}
    toy = robustpo.train("toy-barppo", "Hopper-v5", steps=STEPS, seed=2, out=tmp_path / "toy",
                         preset="ppo-Hopper-v5", overrides=toy_overrides, progress=False)
    # The same loss through autograd in the built-in method: bit for bit the same parameters.
    ref = robustpo.train("barppo", "Hopper-v5", steps=STEPS, seed=2, out=tmp_path / "ref",
                         overrides={**overrides, "analytic_grads": False}, progress=False)
    assert tensors_equal(toy.agent.tensors(), ref.agent.tensors())
    # And the closed form agrees with autograd to float rounding, after one update at the full
    # eps (no ramp): later iterations collect rollouts with policies that differ by that
    # rounding, and Hopper's contacts amplify it by amounts that depend on the CPU.
    one = {**overrides, "eps_ramp": 0.0}
    fast, slow = (robustpo.train("barppo", "Hopper-v5", steps=2 * 64, seed=2,
                                 out=tmp_path / name, progress=False,
                                 overrides={**one, "analytic_grads": name == "fast"})
                  for name in ("fast", "slow"))
    for key, value in fast.agent.tensors().items():
        torch.testing.assert_close(value, slow.agent.tensors()[key], rtol=1e-4, atol=1e-6)
    header = (tmp_path / "toy" / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("train_eps,inner_objective,perturbed_kl")


def test_a_value_loss_term_reaches_the_critic_only(tmp_path):
    base = {**TINY, "attack_eps": 0.1}
    plain = robustpo.train("toy-barppo", "Hopper-v5", steps=STEPS, seed=1, out=tmp_path / "a",
                           preset="ppo-Hopper-v5", overrides=base, progress=False)
    with_term = robustpo.train("toy-barppo", "Hopper-v5", steps=STEPS, seed=1,
                               out=tmp_path / "b", preset="ppo-Hopper-v5",
                               overrides={**base, "value_weight": 10.0}, progress=False)
    a, b = plain.agent.tensors(), with_term.agent.tensors()
    assert not torch.equal(a["critic.net.layers.0.weight"], b["critic.net.layers.0.weight"])
    probe = torch.randn(256, 11)
    with torch.no_grad():
        assert (with_term.agent.critic(probe) ** 2).mean() < (plain.agent.critic(probe) ** 2).mean()


def test_a_custom_callback_receives_every_iterations_metrics(tmp_path):
    recorder = Recorder()
    robustpo.train("barppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path,
                   overrides={**TINY, "attack_eps": 0.1}, progress=False, callbacks=[recorder])
    assert recorder.started == recorder.ended == 1
    assert [r["iteration"] for r in recorder.rows] == [1, 2, 3, 4]
    assert [r["global_step"] for r in recorder.rows] == [128, 256, 384, 512]
    for row in recorder.rows:
        for key in ("policy_loss", "value_loss", "steps_per_s", "train_eps", "perturbed_kl"):
            assert isinstance(row[key], float), key


def test_a_callback_can_stop_training_early(tmp_path):
    class StopAfterTwo(Callback):
        def on_iteration(self, run, metrics):
            run.stop = metrics["iteration"] >= 2

    result = robustpo.train("ppo", "Hopper-v5", steps=STEPS, seed=0, out=tmp_path,
                            overrides=TINY, progress=False, callbacks=[StopAfterTwo()])
    assert result.iterations == 2 and (tmp_path / "agent.json").is_file()


def test_an_unknown_method_lists_the_registered_ones():
    with pytest.raises(robustpo.errors.UnknownNameError, match="toy-barppo"):
        robustpo.train("nope", "Hopper-v5", progress=False)
