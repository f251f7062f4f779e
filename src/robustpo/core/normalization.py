"""Running statistics: the observation normaliser and the reward scaler.

Both follow the convention of the public robust-PPO code bases (REFERENCE section 1 and 3):
observations are normalised by a running mean/std and clipped to [-clip, clip]; rewards are
divided by a running std of the discounted return and clipped to [-clip, clip]. The
observation normaliser belongs to the agent: it is saved with the weights and frozen at
evaluation, so attacks perturb exactly the normalised observation the policy sees.
"""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of vectors, merged batch by batch (Chan et al. 1979).

    Statistics are kept in float64 so that long runs do not drift.

    Args:
        shape: shape of one sample, e.g. ``(obs_dim,)`` or ``()`` for scalars.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch of samples, array of shape ``(n, *shape)``, into the statistics."""
        batch = np.asarray(batch, dtype=np.float64)
        n = batch.shape[0]
        if n == 0:
            return
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        total = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Standard deviation, ``sqrt(var)``, shape ``shape``."""
        return np.sqrt(self.var)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of ``mean``, ``var`` (float64) and ``count`` (0-d array), for checkpoints."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array(self.count)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Load what :meth:`state` produced (arrays of the same shapes).

        Raises:
            ValueError: ``mean`` or ``var`` of another shape than this normaliser's, or
                statistics that are not finite, a negative variance or a negative count.
        """
        mean = np.asarray(state["mean"], dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        count = float(np.asarray(state["count"]))
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"normaliser statistics of shape {mean.shape} / {var.shape}, "
                             f"expected {self.mean.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and np.isfinite(count)):
            raise ValueError("normaliser statistics that are not finite (NaN or inf)")
        if (var < 0).any() or count < 0:
            raise ValueError("a negative normaliser variance or count")
        self.mean, self.var, self.count = mean.copy(), var.copy(), count


class ObservationNormalizer:
    """``clip((obs - mean) / sqrt(var + 1e-8), -clip, clip)`` with running mean and variance.

    Args:
        obs_dim: length of a raw observation vector.
        clip: bound of the normalised observation (10 in REFERENCE section 3).

    Raw observations go in (any float dtype, shape ``(n, obs_dim)``); normalised float32
    observations come out. While ``frozen`` is true (evaluation, attacks), ``normalize`` does not
    update the statistics.
    """

    def __init__(self, obs_dim: int, clip: float = 10.0) -> None:
        self.rms = RunningMeanStd((obs_dim,))
        self.clip = float(clip)
        self.frozen = False

    def normalize(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        """Normalise raw observations ``(n, obs_dim)``; update the statistics unless frozen."""
        if update and not self.frozen:
            self.rms.update(obs)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Divide rewards by the running std of the discounted return, then clip.

    The discounted return ``R <- gamma * R + r`` is tracked per environment and reset at the end
    of each episode; its running variance gives the scale (Engstrom et al. 2020, "Implementation
    Matters", the `reward scaling` of the SA_PPO and ATLA code bases).

    Args:
        num_envs: number of parallel environments.
        gamma: discount factor.
        clip: bound of the scaled reward (10 in REFERENCE section 3).
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0) -> None:
        self.rms = RunningMeanStd(())
        self.ret = np.zeros(num_envs, dtype=np.float64)
        self.gamma = float(gamma)
        self.clip = float(clip)

    def scale(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Scale one vector step of raw rewards ``(num_envs,)``; ``done`` ends episodes after it."""
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        scaled = reward / np.sqrt(self.rms.var + 1e-8)
        self.ret[done] = 0.0
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)
