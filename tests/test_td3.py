"""TD3: the clipped double-Q target and the delayed updates against hand-computed values, the
replay buffer, exact resume with the buffer in the checkpoint (and on Box2D, whose simulator
state cannot be saved), evaluations during training, and learning a small task."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import robustpo
from robustpo.adversaries.offpolicy import TD3Networks, smoothed_target_actions
from robustpo.agents.agent import load_agent
from robustpo.attacks.random_noise import NoAttack
from robustpo.config.sections import TD3Config
from robustpo.core.nets import DeterministicActor, TwinQ, build_module
from robustpo.core.replay import ReplayBuffer, Transitions
from robustpo.errors import CheckpointError, ConfigError
from robustpo.evaluation.episodes import run_episodes
from robustpo.io.checkpoint import load_checkpoint
from robustpo.io.rundir import checkpoint_paths, write_run_metadata
from robustpo.learners.td3 import TD3Learner
from robustpo.results.suite import run_suite
from robustpo.training.callbacks import EVAL_METRICS, Callback
from robustpo.training.driver import train
from robustpo.training.presets import config_from_dict, resolve_config
from robustpo.training.selection import SELECT_SEED, select_final_policy

from .conftest import REDUCTION, TINY_TD3, tensors_equal


def constant_critics(q1: float, q2: float, obs_dim: int = 3, act_dim: int = 2) -> TwinQ:
    """Twin critics whose values are the constants q1 and q2 everywhere."""
    critics = TwinQ(obs_dim, act_dim, [4])
    with torch.no_grad():
        for w in critics.weights:
            w.zero_()
        for b in critics.biases:
            b.zero_()
        critics.biases[-1][0].fill_(q1)
        critics.biases[-1][1].fill_(q2)
    return critics


def nets(critics_target: TwinQ, low=(-1.0, -2.0), high=(1.0, 2.0)) -> TD3Networks:
    actor = DeterministicActor(3, 2, [4], low, high)
    return TD3Networks(actor, constant_critics(0.0, 0.0), actor, critics_target,
                       torch.tensor(low), torch.tensor(high))


def test_the_target_is_the_reward_plus_the_discounted_smaller_twin():
    from robustpo.adversaries.td3 import TD3

    td3 = TD3Config(gamma=0.9)
    method = TD3(robustpo.config.sections.MethodConfig(), td3, 0.1, torch.Generator())
    batch = Transitions(torch.zeros(3, 3), torch.zeros(3, 2), torch.tensor([1.0, -2.0, 0.5]),
                        torch.randn(3, 3), torch.tensor([1.0, 1.0, 0.0]))
    target = method.target(nets(constant_critics(5.0, 3.0)), batch,
                           torch.Generator().manual_seed(0))
    # min(5, 3) = 3: 1 + 0.9 * 3, -2 + 0.9 * 3, and the terminal transition keeps its reward.
    assert torch.allclose(target, torch.tensor([3.7, 0.7, 0.5]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.floats(0.0, 3.0), clip=st.floats(0.0, 1.0))
def test_smoothed_target_actions_stay_in_the_box_and_within_the_clip(seed, noise, clip):
    n = nets(constant_critics(0.0, 0.0))
    td3 = TD3Config(target_noise=noise, target_noise_clip=clip)
    obs = torch.randn(64, 3, generator=torch.Generator().manual_seed(seed))
    actions = smoothed_target_actions(n.actor, n, obs, td3, torch.Generator().manual_seed(seed))
    assert (actions >= n.low).all() and (actions <= n.high).all()
    shift = (actions - n.actor(obs)).abs() / n.half_range
    assert (shift <= clip + 1e-6).all()


def test_the_actor_and_targets_move_only_every_second_critic_update(tmp_path):
    cfg = resolve_config("td3", "InvertedPendulum-v5", preset="defaults",
                         overrides={**TINY_TD3, "tau": 0.25}, total_steps=1000)
    learner = TD3Learner(cfg)
    for _ in range(cfg.td3.learning_starts):
        learner.collect()
    actor = [p.detach().clone() for p in learner.nets.actor.parameters()]
    for k in range(1, 5):
        critics = [p.detach().clone() for p in learner.nets.critics.parameters()]
        targets = [p.detach().clone() for p in learner.nets.critics_target.parameters()]
        learner.gradient_step()
        moved = [not torch.equal(a, p) for a, p in zip(actor, learner.nets.actor.parameters())]
        assert all(moved) == (k % 2 == 0) and any(moved) == (k % 2 == 0), k
        new_targets = list(learner.nets.critics_target.parameters())
        if k % 2 == 0:  # Polyak: target <- (1 - tau) target + tau * critic (after its update)
            now = list(learner.nets.critics.parameters())
            for old, new, critic in zip(targets, new_targets, now):
                assert torch.allclose(new, 0.75 * old + 0.25 * critic, atol=1e-6)
        else:
            assert all(torch.equal(a, b) for a, b in zip(targets, new_targets))
        assert not all(torch.equal(a, b) for a, b in
                       zip(critics, learner.nets.critics.parameters()))
        actor = [p.detach().clone() for p in learner.nets.actor.parameters()]
    assert learner.gradient_steps == 4
    learner.close()


def test_the_replay_buffer_wraps_and_restores():
    buffer = ReplayBuffer(5, 2, 1)
    for start in (0, 3, 6):
        rows = torch.arange(start, start + 3, dtype=torch.float32)
        buffer.add(Transitions(rows[:, None].repeat(1, 2), rows[:, None], rows, rows[:, None]
                               .repeat(1, 2), torch.ones(3)))
    assert buffer.size == 5 and buffer.position == 4
    assert buffer.data["rewards"].tolist() == [5.0, 6.0, 7.0, 8.0, 4.0]  # 0-3 overwritten
    copy = ReplayBuffer(5, 2, 1)
    copy.restore(buffer.state_tensors())
    sample = copy.sample(100, torch.Generator().manual_seed(0))
    assert set(sample.rewards.tolist()) <= {4.0, 5.0, 6.0, 7.0, 8.0}
    with pytest.raises(ValueError, match="does not fit a capacity"):
        ReplayBuffer(3, 2, 1).restore(buffer.state_tensors())


def test_sampled_transitions_are_rows_of_what_was_added():
    buffer = ReplayBuffer(10, 2, 3)
    obs, actions = torch.randn(6, 2), torch.randn(6, 3)
    rewards, next_obs, not_done = torch.randn(6), torch.randn(6, 2), torch.tensor([1.0, 0] * 3)
    buffer.add(Transitions(obs, actions, rewards, next_obs, not_done))
    sample = buffer.sample(50, torch.Generator().manual_seed(1))
    assert sample.rewards.shape == (50,) and sample.actions.shape == (50, 3)
    for i in range(50):
        row = int((rewards == sample.rewards[i]).nonzero())
        for field, source in ((sample.obs, obs), (sample.actions, actions),
                              (sample.next_obs, next_obs), (sample.not_done, not_done)):
            assert torch.equal(field[i], source[row])


def test_twin_critics_are_two_separate_relu_mlps():
    # The pair is one batched network; each critic must compute, and differentiate, as a
    # plain MLP with its own slice of the weights.
    torch.manual_seed(0)
    critics = TwinQ(5, 2, [16, 8])
    obs, actions = torch.randn(32, 5), torch.randn(32, 2)
    q = critics(obs, actions)
    for c in range(2):
        x = torch.cat([obs, actions], -1)
        for i, (w, b) in enumerate(zip(critics.weights, critics.biases, strict=True)):
            x = x @ w[c] + b[c]
            x = torch.relu(x) if i < len(critics.weights) - 1 else x.squeeze(-1)
        assert torch.allclose(q[c], x, atol=1e-5)
        grads = torch.autograd.grad(q[c].square().sum(), list(critics.weights),
                                    retain_graph=True)
        expected = torch.autograd.grad(x.square().sum(), list(critics.weights))
        for g, e in zip(grads, expected, strict=True):
            assert torch.allclose(g[c], e[c], atol=1e-4) and not g[1 - c].any()


def test_td3_configs_are_checked_and_keep_their_learner_section():
    cfg = resolve_config("td3", "Hopper-v5")
    assert cfg.ppo is None and cfg.td3.hidden == [256, 256] and cfg.td3.total_steps == 1_000_000
    assert "ppo" not in cfg.to_dict() and config_from_dict(cfg.to_dict(), "test") == cfg
    with pytest.raises(ConfigError, match="td3.iteration_steps = 1000 is not a multiple"):
        resolve_config("td3", "Hopper-v5", overrides={"num_envs": 3})
    with pytest.raises(ConfigError, match="Unknown config key 'rollout_steps'"):
        resolve_config("td3", "Hopper-v5", overrides={"rollout_steps": 3})


class StopAt(Callback):
    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_iteration(self, run, metrics) -> None:
        run.stop = metrics["iteration"] >= self.iteration


def eval_columns(run_dir) -> list[tuple]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [(r["global_step"], *(r[k] for k in EVAL_METRICS)) for r in csv.DictReader(f)]


def test_td3_resumes_bit_exactly_with_its_replay_buffer(tmp_path):
    kwargs = dict(steps=1200, seed=2, preset="defaults", progress=False)
    sets = {**TINY_TD3, "checkpoint_every": 3}
    full = train("td3", "Hopper-v5", out=tmp_path / "full", overrides=sets, **kwargs)
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path / "full")[0])
    assert meta["iteration"] == 6 and tensors["replay.obs"].shape[0] == 600
    learner = TD3Learner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    assert tensors_equal(learner.state_tensors(), tensors)
    while learner.iteration < learner.total_iterations:
        learner.step()
    assert tensors_equal(learner.agent.tensors(), full.agent.tensors())
    assert tensors_equal(learner.state_tensors(), load_checkpoint(
        checkpoint_paths(tmp_path / "full")[-1])[0])
    learner.close()
    loaded = load_agent(tmp_path / "full")
    assert set(loaded.modules) == {"actor", "q"} and loaded.obs_normalizer.frozen


def test_td3_on_box2d_resumes_its_networks_and_buffer_with_fresh_episodes(tmp_path):
    # BipedalWalker's Box2D state cannot be saved: the resumed run restores everything else
    # exactly and starts new episodes (their running sums zeroed) instead of failing.
    sets = {**TINY_TD3, "checkpoint_every": 3, "eval_every": 300, "eval_episodes": 1}
    kwargs = dict(steps=600, seed=1, preset="defaults", progress=False, overrides=sets)
    train("td3", "BipedalWalker-v3", out=tmp_path, callbacks=[StopAt(4)], **kwargs)
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path)[-1])
    learner = TD3Learner(config_from_dict(meta["config"], "test"))
    assert learner.restore_run_state(tensors, meta, "test") is False
    learner.restore(tensors, meta, "test")
    assert learner.global_step == 300 and not learner.episodes.episode_length.any()
    saved = {k: v for k, v in tensors.items() if k.startswith(("replay.", "target.", "optim."))}
    assert tensors_equal({k: learner.state_tensors()[k] for k in saved}, saved)
    learner.close()
    result = train(resume=tmp_path, progress=False)
    assert result.global_step == 600
    assert [r[0] for r in eval_columns(tmp_path) if r[1] != ""] == ["300", "600"]


def test_td3_with_an_observation_normaliser_trains_and_the_agent_normalises(tmp_path):
    result = train("td3", "Hopper-v5", steps=600, seed=0, preset="defaults", progress=False,
                   out=tmp_path, overrides={**TINY_TD3, "normalize_obs": True})
    rms = load_agent(tmp_path).obs_normalizer.rms
    assert rms.count == 600 and (rms.var != 1.0).all()  # every observation acted on
    assert result.global_step == 600


def test_evaluations_draw_the_learning_curve_resume_and_leave_training_unchanged(
        tmp_path, td3_baseline):
    sets = {**TINY_TD3, "learning_starts": 200, "eval_every": 300, "eval_episodes": 2,
            "checkpoint_every": 3}
    full = train("td3", "Hopper-v5", out=tmp_path / "full", overrides=sets, **REDUCTION)
    # The evaluations run on their own simulators: training is TD3's bit for bit.
    assert tensors_equal(full.agent.tensors(), td3_baseline.agent.tensors())
    rows = eval_columns(tmp_path / "full")
    assert [r[0] for r in rows if r[1] != ""] == ["300", "600", "800"]  # and the last step
    final = run_episodes(full.agent, NoAttack(), 0.0, 2, seed=REDUCTION["seed"] + 100)
    assert float(rows[-1][1]) == pytest.approx(final.stats.mean, abs=0.01)
    # Interrupted after iteration 5 and resumed from the checkpoint of iteration 3, the run
    # evaluates at the same steps with the same results.
    train("td3", "Hopper-v5", out=tmp_path / "cut", overrides=sets, callbacks=[StopAt(5)],
          **REDUCTION)
    train(resume=tmp_path / "cut", progress=False)
    assert eval_columns(tmp_path / "cut") == rows


def test_keep_best_makes_the_best_evaluated_policy_the_runs_agent_and_resumes(tmp_path):
    sets = {**TINY_TD3, "learning_starts": 200, "eval_every": 100, "eval_episodes": 2,
            "checkpoint_every": 3, "keep_best": True}
    full = train("td3", "Hopper-v5", out=tmp_path / "full", overrides=sets, **REDUCTION)
    evals = [(int(r[0]), float(r[1])) for r in eval_columns(tmp_path / "full") if r[1] != ""]
    assert len(evals) == 8
    best_step, best_return = max(evals, key=lambda e: e[1])  # the first of equal bests
    chosen = load_agent(tmp_path / "full")
    assert tensors_equal(chosen.tensors(), full.agent.tensors())
    record = load_checkpoint(tmp_path / "full" / "agent.json")[1]["evaluation"]
    assert record["global_step"] == best_step
    assert record["eval_return"] == pytest.approx(best_return, abs=0.01)
    seed = REDUCTION["seed"] + 100
    again = run_episodes(chosen, NoAttack(), 0.0, 2, seed=seed).stats.mean
    assert again == pytest.approx(best_return, abs=0.01)
    last = run_episodes(load_agent(tmp_path / "full" / "last"), NoAttack(), 0.0, 2, seed=seed)
    assert last.stats.mean == pytest.approx(evals[-1][1], abs=0.01)
    # Interrupted after iteration 5 and resumed from iteration 3: the same policy is chosen.
    train("td3", "Hopper-v5", out=tmp_path / "cut", overrides=sets, callbacks=[StopAt(5)],
          **REDUCTION)
    train(resume=tmp_path / "cut", progress=False)
    assert tensors_equal(load_agent(tmp_path / "cut").tensors(), chosen.tensors())
    with pytest.raises(ConfigError, match="keep_best"):
        resolve_config("td3", "Hopper-v5", overrides={"keep_best": True, "eval_every": 0})


def fresh_mean(directory) -> float:
    return run_episodes(load_agent(directory), NoAttack(), 0.0, 3, seed=SELECT_SEED).stats.mean


def test_select_episodes_keeps_the_better_of_best_and_last_on_fresh_episodes(tmp_path):
    sets = {**TINY_TD3, "learning_starts": 200, "eval_every": 100, "eval_episodes": 2,
            "keep_best": True, "select_episodes": 3}
    run = tmp_path / "run"
    train("td3", "Hopper-v5", out=run, overrides=sets, **REDUCTION)
    best, last = fresh_mean(run / "best"), fresh_mean(run / "last")
    kept = "last" if last > best else "best"
    evaluation = load_checkpoint(run / "agent.json")[1]["evaluation"]
    assert evaluation["selection"]["kept"] == kept
    assert evaluation["selection"]["best_return"] == pytest.approx(best)
    assert evaluation["selection"]["last_return"] == pytest.approx(last)
    assert tensors_equal(load_agent(run).tensors(), load_agent(run / kept).tensors())
    # Both orders of two policies that differ (one stands still): the higher mean is kept.
    still = load_agent(run / "best")
    for param in still.actor.parameters():
        torch.nn.init.zeros_(param)
    policies = {"trained": load_agent(run / "best"), "still": still}
    means = {name: run_episodes(agent, NoAttack(), 0.0, 3, seed=SELECT_SEED).stats.mean
             for name, agent in policies.items()}
    assert means["trained"] != means["still"]
    higher = max(means, key=means.get)
    for first, second in (("trained", "still"), ("still", "trained")):
        directory = tmp_path / first
        policies[first].save(directory / "best", evaluation={"eval_return": 0.0})
        policies[second].save(directory / "last")
        selection = select_final_policy(directory, 3)
        assert selection.kept == ("best" if first == higher else "last")
        assert tensors_equal(load_agent(directory).tensors(), policies[higher].tensors())
    # An exported agent (the best at its root, the last in last/) gets its best/ back first.
    exported = tmp_path / "exported"
    policies["still"].save(exported, evaluation={"eval_return": 0.0})
    policies["trained"].save(exported / "last")
    assert select_final_policy(exported, 3).kept == ("last" if higher == "trained" else "best")
    assert tensors_equal(load_agent(exported / "best").tensors(), still.tensors())
    with pytest.raises(CheckpointError, match="last"):
        select_final_policy(run / "best", 3)
    with pytest.raises(ConfigError, match="select_episodes"):
        resolve_config("td3", "Hopper-v5", overrides={"select_episodes": -1})


@pytest.fixture(scope="module")
def pendulum_td3(tmp_path_factory):
    # 20,000 steps of a 64-64 TD3 (40-80 s on 2 cores).
    return train("td3", "Pendulum-v1", steps=20_000, seed=0, preset="defaults",
                 out=tmp_path_factory.mktemp("td3") / "run", progress=False,
                 overrides={"learning_starts": 1000, "hidden": [64, 64], "batch_size": 100})


@pytest.mark.slow
def test_td3_learns_pendulum(pendulum_td3):
    # A random policy scores about -1200, a swing-up about -150; measured when written: -135
    # over 10 episodes (-506 after 10,000 steps). Stable-Baselines3's TD3 with the same
    # settings reaches only 70-80 on InvertedPendulum-v5 in this budget, hence Pendulum.
    evaluation = robustpo.evaluate(pendulum_td3.agent, episodes=10)
    assert evaluation.stats.mean >= -400, evaluation.stats


@pytest.mark.slow
def test_min_q_lowers_a_trained_td3_agent_more_than_random(pendulum_td3):
    # Measured when written, 10 episodes at eps 0.5: random -147, min-q -247. Both attacks see
    # the same 20 start states, so the gap is not start-state noise.
    suite = run_suite(pendulum_td3.agent, ["random", "min-q"], 0.5, episodes=20,
                      target="action")
    random, min_q = (suite.attacks[a].stats.mean for a in ("random", "min-q"))
    assert min_q < random - 25, (min_q, random)


@pytest.mark.parametrize("algo", ["pr-td3", "nr-td3"])
def test_pr_and_nr_td3_with_alpha_zero_are_td3_bit_for_bit(tmp_path, algo, td3_baseline):
    kwargs = REDUCTION
    sets = {**TINY_TD3, "learning_starts": 200}
    td3 = td3_baseline
    robust = train(algo, "Hopper-v5", out=tmp_path / algo,
                   overrides={**sets, "alpha": 0.0, "adversary_every": 2}, **kwargs)
    assert tensors_equal(td3.agent.tensors(), robust.agent.tensors())
    acting = train(algo, "Hopper-v5", out=tmp_path / f"{algo}-acting",
                   overrides={**sets, "alpha": 0.5, "adversary_every": 2}, **kwargs)
    assert not tensors_equal(td3.agent.tensors(), acting.agent.tensors())


@pytest.mark.parametrize("algo", ["pr-td3", "nr-td3"])
def test_pr_and_nr_td3_resume_bit_exactly_with_their_adversary(tmp_path, algo):
    sets = {**TINY_TD3, "learning_starts": 200, "checkpoint_every": 4, "adversary_every": 2}
    full = train(algo, "Hopper-v5", steps=800, seed=1, preset="defaults", progress=False,
                 out=tmp_path, overrides=sets)
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path)[0])
    assert meta["iteration"] == 4 and "method.adversary.net.0.weight" in tensors
    learner = TD3Learner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    while learner.iteration < learner.total_iterations:
        learner.step()
    assert tensors_equal(learner.state_tensors(), load_checkpoint(
        checkpoint_paths(tmp_path)[-1])[0])
    assert tensors_equal(learner.agent.tensors(), full.agent.tensors())
    learner.close()


def test_select_never_keeps_a_policy_with_non_finite_weights(tmp_path):
    zoo = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"
    good = load_agent(zoo)
    broken = load_agent(zoo)
    with torch.no_grad():
        next(broken.actor.parameters()).fill_(float("nan"))
    for diverged, fine in (("best", "last"), ("last", "best")):
        run = tmp_path / diverged
        broken.save(run / diverged, evaluation={"eval_return": 9999.0})
        good.save(run / fine, evaluation={"eval_return": 0.0})
        selection = select_final_policy(run, 1)
        assert selection.kept == fine
        assert tensors_equal(load_agent(run).tensors(), good.tensors())
        recorded = load_checkpoint(run / "agent.json")[1]["evaluation"]["selection"]
        assert recorded[f"{diverged}_return"] is None and recorded["kept"] == fine
    both = tmp_path / "both"
    broken.save(both / "best", evaluation={"eval_return": 0.0})
    broken.save(both / "last")
    with pytest.raises(CheckpointError, match="not finite"):
        select_final_policy(both, 1)


def bfloat16_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The same network, rebuilt with bf16 hidden-to-hidden products."""
    spec = {**module.spec(), "hidden_dtype": "bfloat16"}
    low = build_module(spec)
    low.load_state_dict(module.state_dict())
    return low


def test_bfloat16_hidden_products_stay_close_to_float32():
    # Inputs, parameters, the first and last layers and the accumulation stay float32, so
    # values and gradients move by about bf16's rounding (2^-8 relative) of the hidden layer.
    torch.manual_seed(0)
    critics, actor = TwinQ(11, 3, [64, 64]), DeterministicActor(11, 3, [64, 64], [-1] * 3, [1] * 3)
    low_critics, low_actor = bfloat16_copy(critics), bfloat16_copy(actor)
    assert low_critics.spec()["hidden_dtype"] == "bfloat16" and low_critics.low_dtype is not None
    obs, actions = torch.randn(128, 11), torch.rand(128, 3) * 2 - 1
    q, low_q = critics(obs, actions), low_critics(obs, actions)
    assert low_q.dtype == torch.float32 and not torch.equal(q, low_q)
    assert torch.allclose(low_q, q, atol=0.02 * q.abs().max().item())
    assert torch.allclose(low_critics.q1(obs, actions), q[0], atol=0.02 * q.abs().max().item())
    a, low_a = actor(obs), low_actor(obs)
    assert torch.allclose(low_a, a, atol=0.02) and (low_a.abs() <= 1).all()
    with torch.no_grad():
        cached, hidden = low_critics.forward_cached(low_critics.observation_part(obs),
                                                    actions.expand(2, -1, -1))
        grad = low_critics.action_gradient(hidden, torch.ones_like(cached))
    assert torch.allclose(cached, low_q, atol=1e-4 * q.abs().max().item())
    exact = actions.expand(2, -1, -1).clone().requires_grad_(True)
    critics(obs, exact).sum().backward()
    cosine = torch.nn.functional.cosine_similarity(grad.flatten(1), exact.grad.flatten(1))
    assert (cosine > 0.99).all(), cosine
    # Parameter gradients reach the float32 parameters through the casts.
    for net, low_net, out in ((critics, low_critics, lambda n: n(obs, actions).sum()),
                              (actor, low_actor, lambda n: n(obs).square().sum())):
        out(net).backward()
        out(low_net).backward()
        for p, low_p in zip(net.parameters(), low_net.parameters(), strict=True):
            assert low_p.grad.dtype == torch.float32
            cos = torch.nn.functional.cosine_similarity(p.grad.flatten(), low_p.grad.flatten(),
                                                        dim=0)
            assert cos > 0.99, cos


def test_unknown_hidden_dtypes_are_refused():
    with pytest.raises(ConfigError, match="td3.hidden_dtype"):
        resolve_config("td3", "Hopper-v5", overrides={"hidden_dtype": "float16"})
    with pytest.raises(ValueError, match="Unknown hidden_dtype"):
        TwinQ(3, 2, [4], "int8")


@pytest.mark.parametrize("algo", ["td3", "pr-td3", "oa-td3"])
def test_bfloat16_agents_train_save_and_reload_with_their_dtype(tmp_path, algo):
    run = train(algo, "Hopper-v5", out=tmp_path / "run",
                overrides={**TINY_TD3, "hidden_dtype": "bfloat16"}, **REDUCTION)
    loaded = load_agent(tmp_path / "run")
    # Every network of the agent (OA-TD3's OA critics too) keeps the dtype it trained with.
    assert {name: module.hidden_dtype for name, module in loaded.modules.items()} == dict.fromkeys(
        loaded.modules, "bfloat16") and len(loaded.modules) == (3 if algo == "oa-td3" else 2)
    obs = torch.randn(5, loaded.obs_dim)
    with torch.no_grad():
        assert torch.equal(loaded.actor(obs), run.agent.actor(obs))


@pytest.mark.slow
@pytest.mark.skipif(not getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)(),
                    reason="no native bf16 products on this CPU (emulated: slow)")
def test_td3_learns_pendulum_with_bfloat16_hidden_products(tmp_path):
    # As test_td3_learns_pendulum with bf16 hidden-to-hidden products; measured when written:
    # -134.1 over 10 episodes (float32: -134.7).
    run = train("td3", "Pendulum-v1", steps=20_000, seed=0, preset="defaults",
                out=tmp_path / "run", progress=False,
                overrides={"learning_starts": 1000, "hidden": [64, 64], "batch_size": 100,
                           "hidden_dtype": "bfloat16"})
    evaluation = robustpo.evaluate(run.agent, episodes=10)
    assert evaluation.stats.mean >= -400, evaluation.stats


def test_a_td3_run_continued_to_a_larger_budget_equals_one_trained_with_it(tmp_path):
    kwargs = dict(seed=2, preset="defaults", progress=False)
    sets = {**TINY_TD3, "checkpoint_every": 3, "eval_every": 300, "eval_episodes": 1}
    full = train("td3", "Hopper-v5", steps=1200, out=tmp_path / "full", overrides=sets, **kwargs)
    train("td3", "Hopper-v5", steps=600, out=tmp_path / "part", overrides=sets, **kwargs)
    extended = train(resume=tmp_path / "part", steps=1200, progress=False)
    assert extended.global_step == 1200
    assert tensors_equal(extended.agent.tensors(), full.agent.tensors())
    assert tensors_equal(load_checkpoint(checkpoint_paths(tmp_path / "part")[-1])[0],
                         load_checkpoint(checkpoint_paths(tmp_path / "full")[-1])[0])
    assert eval_columns(tmp_path / "part") == eval_columns(tmp_path / "full")
    cfg = config_from_dict(yaml.safe_load((tmp_path / "part" / "config.yaml").read_text()), "t")
    assert cfg.td3.total_steps == 1200
    changes = json.loads((tmp_path / "part" / "meta.json").read_text())["budget_changes"]
    assert [(c["total_steps_from"], c["total_steps_to"]) for c in changes] == [(600, 1200)]
    with pytest.raises(ConfigError, match="has taken 1,200 steps already"):
        train(resume=tmp_path / "full", steps=900, progress=False)
    shutil.rmtree(tmp_path / "full" / "checkpoints")  # as an exported agent: left untouched
    config = (tmp_path / "full" / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(resume=tmp_path / "full", steps=1500, progress=False)
    assert (tmp_path / "full" / "config.yaml").read_text() == config


def test_a_ppo_run_refuses_a_new_budget_on_resume(tmp_path):
    write_run_metadata(tmp_path, resolve_config("ppo", "Hopper-v5").to_dict())
    with pytest.raises(ConfigError, match="anneals its learning rates"):
        train(resume=tmp_path, steps=4_000_000, progress=False)
    assert "budget_changes" not in json.loads((tmp_path / "meta.json").read_text())
