"""Environment factory: Gymnasium environments, vectorised, with savable simulator state.

Observations leave the environment *raw*; the agent's :class:`ObservationNormalizer` turns them
into the normalised observations that policies and attacks work on.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from ..errors import ConfigError, UnknownNameError

# The environments robustpo has presets and reference numbers for, and cheap ones for tests.
FEATURED_ENVS = (
    "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5",
    "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Swimmer-v5", "Reacher-v5",
    "Pendulum-v1", "BipedalWalker-v3",
)


def continuous_env_ids() -> list[str]:
    """Registered Gymnasium ids worth listing: the featured ones that are installed."""
    return [e for e in FEATURED_ENVS if e in gym.registry]


def check_env_id(env_id: str) -> None:
    """Raise :class:`UnknownNameError` unless ``env_id`` is a registered Gymnasium id."""
    if env_id not in gym.registry:
        raise UnknownNameError("environment", env_id, continuous_env_ids())


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """Create one environment, wrapped so that its simulator state can be saved and restored.

    Raises:
        UnknownNameError: ``env_id`` is not a registered Gymnasium environment.
        ConfigError: its spaces are not a flat Box (robustpo handles continuous control).
    """
    check_env_id(env_id)
    env = SimStateWrapper(gym.make(env_id, **kwargs))
    obs_space, act_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        env.close()
        raise ConfigError(
            f"{env_id} has observation space {obs_space}; robustpo needs a flat Box of floats."
        )
    if not (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1):
        env.close()
        raise ConfigError(
            f"{env_id} has action space {act_space}; robustpo handles continuous (Box) actions."
        )
    return env


VECTOR_MODES = ("thread", "sync", "async", "envpool")
_SIMULATOR_THREADS = 2  # threads of a ``thread`` vector env


def set_simulator_threads(threads: int) -> None:
    """Threads that ``thread`` vector environments created from now on step their copies in
    (2 by default; 1 in processes that already share the cores with others, such as a scan's
    workers). Trajectories do not depend on it."""
    global _SIMULATOR_THREADS
    _SIMULATOR_THREADS = int(threads)


def make_vector_env(
    env_id: str, num_envs: int, mode: str = "thread"
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepping together, resetting in the same step.

    A finished copy is reset inside ``step`` (Gymnasium's ``AutoresetMode.SAME_STEP``); its last
    observation is in ``info["final_obs"][i]`` where ``info["_final_obs"][i]`` is true (needed
    to bootstrap truncated episodes).

    Modes: ``thread`` (:class:`ThreadedVectorEnv`, two threads unless
    :func:`set_simulator_threads` says otherwise; the default), ``sync``
    (Gymnasium's SyncVectorEnv) and ``async`` (Gymnasium's AsyncVectorEnv, a process per copy)
    give identical trajectories for the same seed. ``envpool`` (:class:`EnvpoolVectorEnv`, the
    optional C++ backend) simulates the same tasks with its own random initial states.

    Raises:
        UnknownNameError: unknown environment. ConfigError: unknown mode, or not a Box task.
    """
    if mode not in VECTOR_MODES:
        raise ConfigError(f"vector_mode must be one of {', '.join(VECTOR_MODES)}, got {mode!r}.")
    make_env(env_id).close()  # fail early, in this process, with a clear message
    env_fn = partial(make_env, env_id)
    if mode == "envpool":
        return EnvpoolVectorEnv(env_id, num_envs)
    fns = [env_fn] * num_envs
    if mode == "thread":
        return ThreadedVectorEnv(fns, _SIMULATOR_THREADS)
    kwargs = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    if mode == "async":
        return gym.vector.AsyncVectorEnv(fns, **kwargs)
    return gym.vector.SyncVectorEnv(fns, **kwargs)


class ThreadedVectorEnv(gym.vector.VectorEnv):
    """Vector environment stepping its copies in two threads of this process.

    Gymnasium's SyncVectorEnv steps copies one after another and AsyncVectorEnv pays a process
    round trip per copy and step, slower than the step itself for MuJoCo's small tasks. MuJoCo
    releases the GIL inside ``mj_step``, so two threads each stepping half of the copies use
    both cores of a small machine (measured on Hopper-v5: 1.7x the steps/s of one thread).
    Semantics are Gymnasium's ``AutoresetMode.SAME_STEP``; info carries only ``final_obs``.

    Args:
        env_fns: callables creating the copies.
        num_threads: threads to spread the copies over (1 steps them in the calling thread).
    """

    def __init__(self, env_fns: list[Any], num_threads: int = 2) -> None:
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        batch_space = gym.vector.utils.batch_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self.metadata = dict(first.metadata, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self.spec = first.spec
        self._chunks = [c for c in np.array_split(np.arange(self.num_envs), num_threads) if len(c)]
        self._pool = ThreadPoolExecutor(len(self._chunks) - 1) if len(self._chunks) > 1 else None
        obs_shape = (self.num_envs, *first.observation_space.shape)
        self._obs = np.zeros(obs_shape, dtype=first.observation_space.dtype)
        self._final_obs = np.zeros(obs_shape, dtype=first.observation_space.dtype)
        self._rewards = np.zeros(self.num_envs)
        self._terminated = np.zeros(self.num_envs, dtype=bool)
        self._truncated = np.zeros(self.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; copy ``i`` gets seed ``seed + i`` when a seed is given."""
        for i, env in enumerate(self.envs):
            self._obs[i], _ = env.reset(seed=None if seed is None else seed + i, options=options)
        return self._obs.copy(), {}

    def _step_chunk(self, indices: np.ndarray, actions: np.ndarray) -> None:
        for i in indices:
            env = self.envs[i]
            obs, self._rewards[i], term, trunc, _ = env.step(actions[i])
            self._terminated[i], self._truncated[i] = term, trunc
            if term or trunc:
                self._final_obs[i] = obs
                obs, _ = env.reset()
            self._obs[i] = obs

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy with its row of ``actions`` ``(num_envs, act_dim)``, in action
        units; a copy that ends is reset at once and its last observation is in
        ``info["final_obs"]``. Returns raw observations ``(num_envs, obs_dim)``, raw rewards,
        terminated and truncated flags ``(num_envs,)`` and that info."""
        first, *rest = self._chunks
        futures = [self._pool.submit(self._step_chunk, c, actions) for c in rest] if rest else []
        self._step_chunk(first, actions)
        for f in futures:
            f.result()
        ended = self._terminated | self._truncated
        info: dict[str, Any] = {}
        if ended.any():
            final = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(ended):
                final[i] = self._final_obs[i].copy()
            info = {"final_obs": final, "_final_obs": ended}
        return (
            self._obs.copy(), self._rewards.copy(), self._terminated.copy(),
            self._truncated.copy(), info,
        )

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Each copy's attribute ``name`` (through its wrappers), called with the arguments
        when it is callable."""
        out = []
        for env in self.envs:
            attr = env.get_wrapper_attr(name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(out)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set attribute ``name`` of every copy: one value each, or the same for all."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        for env, value in zip(self.envs, values, strict=True):
            env.set_wrapper_attr(name, value)

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for env in self.envs:
            env.close()


class SimStateWrapper(gym.Wrapper):
    """Save and restore everything that determines an environment's future.

    For MuJoCo environments this is the full integration state (``mjSTATE_INTEGRATION``:
    time, qpos, qvel, actuator state, warm-start accelerations...), the time-limit step counter
    and the environment's random generator, so a resumed run continues bit-exactly. Other
    environments return ``None`` and are reset on resume.
    """

    def _time_limit(self) -> gym.wrappers.TimeLimit | None:
        env: gym.Env = self.env
        while isinstance(env, gym.Wrapper):
            if isinstance(env, gym.wrappers.TimeLimit):
                return env
            env = env.env
        return None

    def get_sim_state(self) -> dict[str, Any] | None:
        """The MuJoCo integration state (float64 array), time-limit counter and generator
        state (JSON); None for an environment that is not MuJoCo."""
        base = self.env.unwrapped
        if not hasattr(base, "model") or not isinstance(base.model, mujoco.MjModel):
            return None
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(base.model, spec), dtype=np.float64)
        mujoco.mj_getState(base.model, base.data, state, spec)
        limit = self._time_limit()
        return {
            "mj_state": state,
            "elapsed_steps": int(limit._elapsed_steps or 0) if limit else 0,
            "np_random": json.dumps(base.np_random.bit_generator.state),
        }

    pending_sim_state: dict[str, Any] | None = None

    def apply_pending_sim_state(self) -> None:
        """Apply the state put in ``pending_sim_state`` (vector envs set it per copy)."""
        if self.pending_sim_state is not None:
            self.set_sim_state(self.pending_sim_state)
            self.pending_sim_state = None

    def set_sim_state(self, saved: dict[str, Any]) -> None:
        """Restore what :meth:`get_sim_state` returned."""
        base = self.env.unwrapped
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        # No mj_forward: mj_step recomputes every derived quantity from this state, so the
        # continuation is bit-exact; the matching observation is saved by the learner.
        mujoco.mj_setState(base.model, base.data, np.asarray(saved["mj_state"]), spec)
        limit = self._time_limit()
        if limit is not None:
            limit._elapsed_steps = int(saved["elapsed_steps"])
        base.np_random.bit_generator.state = json.loads(saved["np_random"])


class EnvpoolVectorEnv(gym.vector.VectorEnv):
    """envpool's C++ thread pool behind the interface of :class:`ThreadedVectorEnv`.

    envpool (``pip install robustpo[envpool]``) steps Gymnasium's MuJoCo tasks in C++ threads:
    about twice the steps/s of :class:`ThreadedVectorEnv` on 2 cores, with observations equal
    to Gymnasium's to 1e-15 (``benchmarks/envpool_check.py``). A finished copy is reset at once
    (``AutoresetMode.SAME_STEP``, as the other modes), so envpool's own reset-on-next-step never
    fires. The pool is built at the first ``reset(seed=...)``, since envpool seeds at
    construction. Its simulator state cannot be saved: a resumed run starts fresh episodes.

    Raises:
        ConfigError: envpool is not installed or does not provide ``env_id``.
    """

    def __init__(self, env_id: str, num_envs: int, num_threads: int = 2) -> None:
        try:
            import envpool
        except ImportError:
            raise ConfigError(
                "vector_mode 'envpool' needs the envpool package: pip install 'robustpo[envpool]'"
                ", or use vector_mode 'thread'."
            ) from None
        if env_id not in envpool.list_all_envs():
            raise ConfigError(f"envpool does not provide {env_id}; use vector_mode 'thread'.")
        self._envpool, self._env_id = envpool, env_id
        self._threads = max(1, min(num_threads, num_envs))
        self._pool: Any = None
        spec = make_env(env_id)
        self.num_envs = num_envs
        self.single_observation_space = spec.observation_space
        self.single_action_space = spec.action_space
        batch_space = gym.vector.utils.batch_space
        self.observation_space = batch_space(spec.observation_space, num_envs)
        self.action_space = batch_space(spec.action_space, num_envs)
        self.metadata = dict(spec.metadata, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        spec.close()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy. A seed rebuilds the pool with it: envpool seeds the whole pool
        from one seed, so copy ``i`` does not start as :class:`ThreadedVectorEnv`'s ``seed + i``
        would."""
        if self._pool is None or seed is not None:
            self._pool = self._envpool.make(
                self._env_id, env_type="gymnasium", num_envs=self.num_envs,
                num_threads=self._threads, seed=0 if seed is None else seed,
            )
        obs, _ = self._pool.reset()
        return obs, {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """As :meth:`ThreadedVectorEnv.step`."""
        obs, reward, terminated, truncated, _ = self._pool.step(
            np.asarray(actions, dtype=np.float64)
        )
        ended = terminated | truncated
        info: dict[str, Any] = {}
        if ended.any():
            ids = np.flatnonzero(ended)
            final = np.empty(self.num_envs, dtype=object)
            for i in ids:
                final[i] = obs[i].copy()
            obs[ids], _ = self._pool.reset(ids)
            info = {"final_obs": final, "_final_obs": ended}
        return obs, reward.astype(np.float64), terminated, truncated, info

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Only ``get_sim_state``, which has nothing to save (None per copy).

        Raises:
            AttributeError: any other name.
        """
        if name == "get_sim_state":
            return (None,) * self.num_envs
        raise AttributeError(f"EnvpoolVectorEnv does not support call({name!r})")

    def close_extras(self, **kwargs: Any) -> None:
        self._pool = None
