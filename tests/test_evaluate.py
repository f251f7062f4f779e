import numpy as np
import pytest
import torch

from robustpo.agents.agent import Agent, gaussian_agent
from robustpo.attacks import ObservationAttack, make_attack
from robustpo.errors import ConfigError, PerturbationOutOfBallError, UnknownNameError
from robustpo.evaluation.episodes import ReturnStats
from robustpo.results.suite import evaluate


def pendulum_agent() -> Agent:
    torch.manual_seed(0)
    agent = gaussian_agent("Pendulum-v1", 3, 1, np.array([-2.0]), np.array([2.0]), [8, 8])
    agent.obs_normalizer.frozen = True
    return agent


def test_return_stats_known_values():
    s = ReturnStats.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.mean == pytest.approx(22.0)
    assert s.median == 3.0
    assert s.std == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert s.ci95[0] < s.mean < s.ci95[1]
    assert ReturnStats.of([5.0, 5.0]).ci95 == (5.0, 5.0)


def test_results_do_not_depend_on_the_number_of_parallel_envs():
    agent = pendulum_agent()
    a = evaluate(agent, episodes=5, num_envs=1, seed=3)
    b = evaluate(agent, episodes=5, num_envs=4, seed=3)
    # Batched matrix products round differently from single rows: equal up to float32 noise.
    np.testing.assert_allclose(a.returns, b.returns, rtol=1e-6)
    assert a.lengths == [200] * 5 and a.stats.n == 5


def test_random_attack_changes_returns_and_stays_deterministic():
    agent = pendulum_agent()
    clean = evaluate(agent, episodes=3, seed=0)
    noisy = evaluate(agent, episodes=3, attack="random", eps=0.5, seed=0)
    again = evaluate(agent, episodes=3, attack="random", eps=0.5, seed=0)
    assert noisy.returns != clean.returns
    assert noisy.returns == again.returns


class EscapingAttack(ObservationAttack):
    name = "escaping"
    description = "a broken attack for tests"

    def perturb(self, agent, obs, eps):
        return obs + 2 * eps


def test_perturbation_outside_the_ball_raises():
    with pytest.raises(PerturbationOutOfBallError, match="'escaping'.*outside the eps-ball"):
        evaluate(pendulum_agent(), episodes=1, attack=EscapingAttack(), eps=0.1)


def test_unknown_attack_and_bad_arguments():
    with pytest.raises(UnknownNameError, match="Valid observation attacks are: .*random"):
        make_attack("mad-max")
    with pytest.raises(ConfigError, match="episodes must be an integer >= 1"):
        evaluate(pendulum_agent(), episodes=0)


def test_an_agent_of_another_environment_is_refused_before_any_episode():
    from robustpo.evaluation.episodes import run_episodes

    agent = gaussian_agent("Pendulum-v1", 3, 1, np.array([-2.0]), np.array([2.0]), [8, 8])
    with pytest.raises(ConfigError, match=r"Hopper-v5 has observations of shape \(11,\)"):
        run_episodes(agent, make_attack("none"), 0.0, 1, env_id="Hopper-v5")
