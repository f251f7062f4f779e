"""The agent: policy, value function and observation normaliser, saved and loaded together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError
from .nets import GaussianActor, ValueNet
from .normalization import ObservationNormalizer

AGENT_FILE = "agent"


class Agent:
    """A Gaussian policy and value function acting on normalised observations.

    Args:
        env_id: Gymnasium id of the environment it was trained on.
        obs_dim, act_dim: sizes of the raw observation and the action.
        action_low, action_high: bounds of the action space (actions are clipped to them
            before they reach the environment).
        hidden: hidden sizes of both networks.
        init_std: initial policy standard deviation.
        obs_clip: bound of the normalised observation.

    ``act`` takes *raw* observations; ``act_normalized`` and the networks take *normalised*
    ones, which is what attacks perturb.
    """

    def __init__(
        self,
        env_id: str,
        obs_dim: int,
        act_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        hidden: list[int],
        init_std: float = 1.0,
        obs_clip: float = 10.0,
    ) -> None:
        self.env_id = env_id
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.action_low = np.asarray(action_low, dtype=np.float32)
        self.action_high = np.asarray(action_high, dtype=np.float32)
        self.hidden = [int(h) for h in hidden]
        self.actor = GaussianActor(obs_dim, act_dim, self.hidden, init_std)
        self.critic = ValueNet(obs_dim, self.hidden)
        self.obs_normalizer = ObservationNormalizer(obs_dim, obs_clip)

    # ---- acting -------------------------------------------------------------------------
    def normalize(self, obs: np.ndarray, update: bool = False) -> torch.Tensor:
        """Raw observations ``(n, obs_dim)`` -> normalised float32 tensor (frozen by default)."""
        return torch.from_numpy(self.obs_normalizer.normalize(obs, update=update))

    @torch.no_grad()
    def act_normalized(self, obs_norm: torch.Tensor, deterministic: bool = True) -> np.ndarray:
        """Actions ``(n, act_dim)`` float32 for normalised observations, clipped to the bounds."""
        mean = self.actor(obs_norm)
        if not deterministic:
            mean = mean + torch.randn_like(mean) * self.actor.log_std.exp()
        return np.clip(mean.numpy(), self.action_low, self.action_high)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Act on raw observations, shape ``(obs_dim,)`` or ``(n, obs_dim)``; frozen normaliser.

        Raises:
            ValueError: the observation does not have ``obs_dim`` features.
        """
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.obs_dim:
            raise ValueError(
                f"Agent for {self.env_id} expects observations of shape ({self.obs_dim},) or "
                f"(n, {self.obs_dim}); got {obs.shape}."
            )
        actions = self.act_normalized(self.normalize(batch), deterministic)
        return actions[0] if single else actions

    # ---- persistence --------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """Weights and normaliser statistics as named tensors (for safetensors)."""
        out = {f"actor.{k}": v for k, v in self.actor.state_dict().items()}
        out.update({f"critic.{k}": v for k, v in self.critic.state_dict().items()})
        for k, v in self.obs_normalizer.rms.state().items():
            out[f"obs_rms.{k}"] = torch.as_tensor(v, dtype=torch.float64)
        return out

    def spec(self) -> dict[str, Any]:
        """What is needed to rebuild the (empty) networks before loading tensors."""
        return {
            "env_id": self.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
            "hidden": self.hidden,
            "obs_clip": self.obs_normalizer.clip,
        }

    def load_tensors(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Load what :meth:`tensors` produced; raise :class:`CheckpointError` on a mismatch."""
        try:
            for prefix, module in (("actor.", self.actor), ("critic.", self.critic)):
                module.load_state_dict(
                    {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                )
            self.obs_normalizer.rms.load_state(
                {k: tensors[f"obs_rms.{k}"].numpy() for k in ("mean", "var", "count")}
            )
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"{source} does not fit this agent ({self.env_id}, obs {self.obs_dim}, act "
                f"{self.act_dim}, hidden {self.hidden}): {str(exc).splitlines()[0]}"
            ) from None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Agent:
        return cls(
            spec["env_id"], spec["obs_dim"], spec["act_dim"], np.array(spec["action_low"]),
            np.array(spec["action_high"]), spec["hidden"], obs_clip=spec["obs_clip"],
        )

    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (a directory: writes ``agent.safetensors`` and ``agent.json``)."""
        return save_checkpoint(Path(path) / AGENT_FILE, self.tensors(), {"agent": self.spec()})


def load_agent(path: str | Path) -> Agent:
    """Load an agent from a run directory, an ``agent.json`` or a checkpoint ``.json``.

    In a run directory the final ``agent.json`` is used, or else the newest checkpoint. The
    normaliser is frozen: evaluation and attacks never change it.

    Raises:
        CheckpointError: nothing loadable at ``path``, or the files are corrupt or incompatible.
    """
    from .rundir import find_agent_file

    meta_path = find_agent_file(Path(path))
    tensors, meta = load_checkpoint(meta_path)
    if "agent" not in meta:
        raise CheckpointError(f"{meta_path} holds no agent description (key 'agent').")
    try:
        agent = Agent.from_spec(meta["agent"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{meta_path}: the agent description is incomplete ({exc!r})."
        ) from None
    agent.load_tensors(tensors, str(meta_path))
    agent.obs_normalizer.frozen = True
    agent.actor.eval()
    agent.critic.eval()
    return agent
