"""Victims trained elsewhere: Stable-Baselines3 PPO, SAC and TD3 model files.

A Stable-Baselines3 ``model.zip`` holds the networks' weights (``policy.pth``, a plain tensor
dict, read with ``torch.load(weights_only=True)``) and a JSON description (``data``) of the
algorithm, spaces and policy keyword arguments. The adapter rebuilds the deterministic policy
and a critic from them, without Stable-Baselines3 installed and without unpickling code. A
``VecNormalize`` statistics file (a pickle) is read by a restricted unpickler that builds only
numpy arrays and plain attribute holders.

**Where eps applies.** Attacks perturb the policy's *input*: with a VecNormalize file, the
normalised observation (as for robustpo agents); without one, the raw observation.

What the adapter exposes to the attacks:

- ``actor(x)``: the deterministic action before clipping: PPO's Gaussian mean; SAC's
  ``tanh(mu)`` and TD3's tanh output, both rescaled to the action bounds.
- ``actor.log_std``: PPO's learned log-std; zeros for SAC and TD3 (whose deterministic
  policies have no state-independent sigma), so MAD maximises the plain squared action change.
- ``critic(x)``: PPO's V(s); for SAC and TD3 the first Q network at the policy's own action,
  ``Q1(s, actor(s))``, which is V of the deterministic policy (the Critic attack's target);
  ``critic.action_value(x, a)``: their Q1(s, a) (the ``min-q`` action attack's).
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..core.envs import make_env
from ..core.normalization import ObservationNormalizer
from ..errors import ConfigError
from .agent import Agent

ACTIVATIONS = {"Tanh": nn.Tanh, "ReLU": nn.ReLU, "ELU": nn.ELU, "LeakyReLU": nn.LeakyReLU,
               "GELU": nn.GELU, "SiLU": nn.SiLU}


class SB3ModelError(ConfigError):
    """A Stable-Baselines3 file robustpo cannot read, or whose spaces do not fit the env."""


def _mlp(state: dict[str, torch.Tensor], prefix: str, activation: type[nn.Module],
         final: nn.Module | None = None) -> nn.Sequential:
    """An nn.Sequential of the Linear layers ``prefix.{i}`` (activations between them)."""
    indices = sorted({int(k[len(prefix) + 1:].split(".")[0]) for k in state
                      if k.startswith(prefix + ".") and k.endswith(".weight")})
    layers: list[nn.Module] = []
    for n, i in enumerate(indices):
        w, b = state[f"{prefix}.{i}.weight"], state[f"{prefix}.{i}.bias"]
        linear = nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data.copy_(w)
        linear.bias.data.copy_(b)
        layers.append(linear)
        if n < len(indices) - 1 or final is None:
            layers.append(activation())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def _linear(state: dict[str, torch.Tensor], prefix: str) -> nn.Linear:
    w, b = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
    layer = nn.Linear(w.shape[1], w.shape[0])
    layer.weight.data.copy_(w)
    layer.bias.data.copy_(b)
    return layer


class SB3Actor(nn.Module):
    """Deterministic SB3 policy: ``head(body(x))``, optionally tanh-squashed and rescaled from
    [-1, 1] to the action bounds. Input ``(batch, obs_dim)`` float32 (the policy's input space)."""

    def __init__(self, body: nn.Module, head: nn.Module, log_std: torch.Tensor,
                 squash: str | None, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.body, self.head, self.squash = body, head, squash
        self.log_std = nn.Parameter(log_std.clone(), requires_grad=False)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic action ``(batch, act_dim)`` in action units (before clipping)."""
        y = self.head(self.body(x))
        if self.squash == "tanh":
            y = torch.tanh(y)
        if self.squash is not None:  # SB3 unscale_action: [-1, 1] -> [low, high]
            y = self.low + 0.5 * (y + 1.0) * (self.high - self.low)
        return y

    def act(self, x: torch.Tensor, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """The deterministic action, or for PPO a sample of its Gaussian: ``(batch, act_dim)``
        float32 in action units (PPO's unclipped) for normalised observations ``(batch,
        obs_dim)``."""
        y = self(x)
        if deterministic or self.squash is not None:
            return y
        return torch.addcmul(y, self.log_std.exp(), torch.randn(y.shape, generator=generator))


class SB3Critic(nn.Module):
    """V(s) ``(batch,)``: PPO's value head, or ``Q1(s, actor(s))`` for SAC and TD3."""

    def __init__(self, net: nn.Module, actor: SB3Actor | None) -> None:
        super().__init__()
        self.net, self.actor = net, actor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) ``(batch,)`` for normalised observations ``(batch, obs_dim)``."""
        if self.actor is None:
            return self.net(x).squeeze(-1)
        return self.action_value(x, self.actor(x))

    def action_value(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """SAC's and TD3's Q1(s, a) ``(batch,)`` for actions in action units: SB3's critics
        take actions rescaled to [-1, 1] (its replay buffer keeps them so)."""
        if self.actor is None:
            raise AttributeError("a PPO model has no Q function")
        low, high = self.actor.low, self.actor.high
        scaled = 2.0 * (actions - low) / (high - low) - 1.0
        return self.net(torch.cat([x, scaled], -1)).squeeze(-1)


class SB3Victim(Agent):
    """An :class:`~robustpo.agents.agent.Agent` whose ``actor`` and ``critic`` modules are a
    Stable-Baselines3 model's.

    Built by :func:`load_sb3_victim`; usable wherever robustpo takes a victim (``evaluate``,
    ``run_suite``, every attack). It cannot be trained or saved by robustpo.

    Args:
        env_id: the environment it is attacked on; algo: ``ppo``, ``sac`` or ``td3``;
        actor, critic: the adapted networks; normalizer: VecNormalize's statistics or the
        identity; low, high: the action bounds; attack_eps: the default attack radius.
    """

    def __init__(self, env_id: str, algo: str, actor: SB3Actor, critic: SB3Critic,
                 normalizer: ObservationNormalizer, low: np.ndarray, high: np.ndarray,
                 attack_eps: float | None = None) -> None:
        super().__init__(env_id, {"actor": actor, "critic": critic}, normalizer, low, high,
                         attack_eps)
        self.algo = algo

    def save(self, path: str | Path) -> Path:
        """Not supported.

        Raises:
            SB3ModelError: always.
        """
        raise SB3ModelError("A Stable-Baselines3 victim cannot be saved as a robustpo agent.")


def _read_zip(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise SB3ModelError(f"The Stable-Baselines3 model {path} does not exist.")
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
            state = torch.load(io.BytesIO(zf.read("policy.pth")), weights_only=True,
                               map_location="cpu")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, RuntimeError,
            pickle.UnpicklingError, EOFError) as exc:
        raise SB3ModelError(
            f"{path} is not a readable Stable-Baselines3 model file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Pass the .zip written by "
            f"model.save()."
        ) from None
    return data, state


def _space_bounds(space: dict[str, Any], what: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        shape = tuple(space["_shape"])
        low = np.array(space["low"].strip("[]").split(), dtype=np.float64).reshape(shape)
        high = np.array(space["high"].strip("[]").split(), dtype=np.float64).reshape(shape)
    except (KeyError, ValueError, AttributeError):
        raise SB3ModelError(f"{path}: its {what} is not a Box space; robustpo attacks "
                            f"continuous-control models with Box spaces only.") from None
    return low, high


class _Holder:
    """Stand-in for any class in a VecNormalize pickle: accepts any arguments and state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds numpy arrays and dtypes for real; every other class becomes a :class:`_Holder`."""

    REAL: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
        *((f"numpy.{core}.{m}", n) for core in ("core", "_core") for m, n in (
            ("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.REAL:
            return super().find_class(module, name)
        if module == "copyreg" and name == "_reconstructor":
            return super().find_class(module, name)
        return _Holder


def _read_vecnormalize(path: Path, obs_dim: int) -> ObservationNormalizer:
    try:
        with open(path, "rb") as f:
            state = _RestrictedUnpickler(f).load()
        rms, clip = state.obs_rms, float(state.clip_obs)
        epsilon = float(getattr(state, "epsilon", 1e-8))
        mean, var = np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64)
        norm_obs = bool(getattr(state, "norm_obs", True))
    except (OSError, pickle.UnpicklingError, AttributeError, EOFError, TypeError,
            ValueError) as exc:
        raise SB3ModelError(
            f"{path} is not a readable VecNormalize statistics file ({type(exc).__name__}). "
            f"Pass the file written by VecNormalize.save()."
        ) from None
    if mean.shape != (obs_dim,):
        raise SB3ModelError(f"{path} holds statistics for observations of shape {mean.shape}, "
                            f"but the model takes ({obs_dim},).")
    normalizer = ObservationNormalizer(obs_dim, clip if norm_obs else np.inf)
    if norm_obs:  # our normaliser adds 1e-8 to the variance; fold in VecNormalize's epsilon
        normalizer.rms.mean, normalizer.rms.var = mean, var + epsilon - 1e-8
    else:
        normalizer.rms.var = np.full(obs_dim, 1.0 - 1e-8)
    normalizer.frozen = True
    return normalizer


def load_sb3_victim(model: str | Path, env_id: str, vecnormalize: str | Path | None = None,
                    attack_eps: float | None = None) -> SB3Victim:
    """Load a Stable-Baselines3 PPO, SAC or TD3 model as a robustpo victim on ``env_id``.

    Args:
        model: path of the ``.zip`` written by ``model.save()``.
        env_id: Gymnasium id of the environment to attack it on.
        vecnormalize: path of a ``VecNormalize.save()`` file, if the model was trained with
            one (its observation statistics then define the input space eps applies to).
        attack_eps: the victim's default attack radius (in the units of its input).

    Raises:
        SB3ModelError: unreadable file, an unsupported algorithm or policy, or observation
            or action spaces that do not match ``env_id``'s (the message says which).
        UnknownNameError: unknown environment.
    """
    path = Path(model)
    data, state = _read_zip(path)
    module = str(data.get("policy_class", {}).get("__module__", ""))
    algo = {"stable_baselines3.common.policies": "ppo", "stable_baselines3.sac.policies": "sac",
            "stable_baselines3.td3.policies": "td3"}.get(module)
    if algo is None:
        raise SB3ModelError(f"{path}: policy module {module!r} is not supported; robustpo "
                            f"adapts Stable-Baselines3 PPO, SAC and TD3 MlpPolicy models.")
    obs_low, _ = _space_bounds(data["observation_space"], "observation space", path)
    act_low, act_high = _space_bounds(data["action_space"], "action space", path)
    env = make_env(env_id)
    env_obs, env_act = env.observation_space, env.action_space
    env.close()
    if obs_low.shape != env_obs.shape:
        raise SB3ModelError(
            f"{path} takes observations of shape {obs_low.shape}, but {env_id} gives "
            f"{env_obs.shape}. Attack it on the environment it was trained on.")
    if act_low.shape != env_act.shape or not (np.allclose(act_low, env_act.low)
                                              and np.allclose(act_high, env_act.high)):
        raise SB3ModelError(
            f"{path} acts in a Box of shape {act_low.shape} and bounds [{act_low.min()}, "
            f"{act_high.max()}], but {env_id}'s action space is {env_act}. Attack it on the "
            f"environment it was trained on.")
    kwargs = data.get("policy_kwargs") or {}
    default = "Tanh" if algo == "ppo" else "ReLU"
    act_name = str(kwargs.get("activation_fn", default)).split(".")[-1].strip("'>")
    if act_name not in ACTIVATIONS:
        raise SB3ModelError(f"{path}: activation {act_name!r} is not supported "
                            f"({', '.join(ACTIVATIONS)}).")
    activation = ACTIVATIONS[act_name]
    obs_dim, act_dim = obs_low.shape[0], act_low.shape[0]
    try:
        if algo == "ppo":
            actor = SB3Actor(_mlp(state, "mlp_extractor.policy_net", activation),
                             _linear(state, "action_net"), state["log_std"], None, act_low,
                             act_high)
            value = nn.Sequential(_mlp(state, "mlp_extractor.value_net", activation),
                                  _linear(state, "value_net"))
            critic = SB3Critic(value, None)
        else:
            if algo == "sac":
                body, head = _mlp(state, "actor.latent_pi", activation), _linear(state, "actor.mu")
                squash = "tanh"
            else:  # TD3: actor.mu is the whole MLP ending in tanh
                body, head = _mlp(state, "actor.mu", activation, final=nn.Tanh()), nn.Identity()
                squash = "rescale"
            actor = SB3Actor(body, head, torch.zeros(act_dim), squash, act_low, act_high)
            q1 = _mlp(state, "critic.qf0", activation, final=nn.Identity())
            critic = SB3Critic(q1, actor)
    except KeyError as exc:
        raise SB3ModelError(f"{path}: the {algo.upper()} weights lack {exc}; robustpo adapts "
                            f"the default MlpPolicy layout (no shared or custom extractor).")\
            from None
    for p in [*actor.parameters(), *critic.parameters()]:
        p.requires_grad_(False)
    if vecnormalize is not None:
        normalizer = _read_vecnormalize(Path(vecnormalize), obs_dim)
    else:  # identity, unclipped: eps then applies to raw observations
        normalizer = ObservationNormalizer(obs_dim, np.inf)
        normalizer.rms.var = np.full(obs_dim, 1.0 - 1e-8)
        normalizer.frozen = True
    with torch.no_grad():
        probe = actor(torch.zeros(1, obs_dim))
    if probe.shape != (1, act_dim):
        raise SB3ModelError(f"{path}: the policy outputs {tuple(probe.shape[1:])} actions, "
                            f"expected ({act_dim},).")
    return SB3Victim(env_id, algo, actor, critic, normalizer, act_low, act_high, attack_eps)
