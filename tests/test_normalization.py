import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.core.normalization import ObservationNormalizer, RewardScaler, RunningMeanStd


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=8), st.integers(0, 2**31 - 1))
def test_running_mean_std_equals_batch_statistics(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in sizes]
    rms = RunningMeanStd((4,))
    for b in batches:
        rms.update(b)
    data = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, data.mean(0), atol=1e-10)
    np.testing.assert_allclose(rms.var, data.var(0), atol=1e-10)
    assert rms.count == len(data)


def test_observation_normalizer_known_values_clip_and_freeze():
    norm = ObservationNormalizer(2, clip=10.0)
    norm.normalize(np.array([[0.0, 0.0], [2.0, 4.0]]))  # mean (1, 2), var (1, 4)
    norm.frozen = True
    out = norm.normalize(np.array([[3.0, 2.0], [1001.0, -1000.0]]))
    np.testing.assert_allclose(out[0], [2.0, 0.0], atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[1], [10.0, -10.0])  # clipped
    assert norm.rms.count == 2  # frozen: not updated


def test_reward_scaler_divides_by_running_std_of_discounted_return():
    scaler = RewardScaler(num_envs=1, gamma=0.5, clip=10.0)
    r1 = scaler.scale(np.array([2.0]), np.array([False]))  # returns seen: [2]; var 0
    assert r1[0] == 10.0  # 2 / sqrt(0 + 1e-8), clipped to 10
    r2 = scaler.scale(np.array([2.0]), np.array([True]))  # returns [2, 3]: var 0.25, std 0.5
    assert r2[0] == pytest.approx(4.0, rel=1e-6)
    assert scaler.ret[0] == 0.0  # reset at episode end
