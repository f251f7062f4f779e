import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.core.gae import compute_gae


def test_gae_hand_computed_example():
    # One env, three steps, gamma = 0.5, lambda = 0.5, no episode end:
    # deltas = r + 0.5 * V' - V = [1 + 1 - 1, 0 + 1.5 - 2, 2 + 2 - 3] = [1, -0.5, 1]
    # A_2 = 1; A_1 = -0.5 + 0.25 * 1 = -0.25; A_0 = 1 + 0.25 * -0.25 = 0.9375
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[1.0], [2.0], [3.0]])
    next_values = torch.tensor([[2.0], [3.0], [4.0]])
    ends = torch.zeros(3, 1)
    adv, ret = compute_gae(rewards, values, next_values, ends, gamma=0.5, lam=0.5)
    assert adv[:, 0].tolist() == pytest.approx([0.9375, -0.25, 1.0])
    assert ret[:, 0].tolist() == pytest.approx([1.9375, 1.75, 4.0])


def test_gae_does_not_cross_episode_end():
    # Episode ends at t=0 (terminated: next value 0); the advantage at t=0 is its own delta.
    rewards = torch.tensor([[1.0], [5.0]])
    values = torch.tensor([[0.5], [1.0]])
    next_values = torch.tensor([[0.0], [2.0]])
    ends = torch.tensor([[1.0], [0.0]])
    adv, _ = compute_gae(rewards, values, next_values, ends, gamma=0.9, lam=0.95)
    assert adv[0, 0].item() == pytest.approx(1.0 - 0.5)
    assert adv[1, 0].item() == pytest.approx(5.0 + 0.9 * 2.0 - 1.0)


def naive_gae(r, v, nv, e, gamma, lam):
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * (r[k, n] + gamma * nv[k, n] - v[k, n])
                if e[k, n]:
                    break
                weight *= gamma * lam
            adv[t, n] = total
    return adv


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       st.integers(0, 2**31 - 1))
def test_gae_matches_the_sum_definition(T, N, gamma, lam, seed):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.normal(size=(T, N)) for _ in range(3))
    e = rng.random((T, N)) < 0.3
    adv, ret = compute_gae(*(torch.tensor(x, dtype=torch.float64) for x in (r, v, nv)),
                           torch.tensor(e, dtype=torch.float64), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), naive_gae(r, v, nv, e, gamma, lam), atol=1e-9)
    np.testing.assert_allclose(ret.numpy(), adv.numpy() + v, atol=1e-12)
