"""Learning that actually happens: PPO balances InvertedPendulum-v5 within a small budget."""

import pytest

import robustpo


@pytest.mark.slow
def test_ppo_learns_inverted_pendulum(tmp_path):
    # 30 iterations of 2048 steps (61,440 steps, about 30 s on 2 cores). A random policy scores
    # about 5-10; the maximum is 1000 (the episode's 1000-step time limit). The bar leaves room
    # for an episode or two that fall early on a CPU whose rounding sends training elsewhere.
    result = robustpo.train("ppo", "InvertedPendulum-v5", steps=30 * 2048, seed=0, out=tmp_path,
                            preset="defaults", progress=False)
    evaluation = robustpo.evaluate(result.agent, episodes=10)
    assert evaluation.stats.mean >= 800, evaluation.stats
