"""The agent: named modules (actor, critics, extra heads) and the observation normaliser,
saved and loaded together whatever modules it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.nets import GaussianActor, ValueNet, build_module
from ..core.normalization import ObservationNormalizer
from ..errors import CheckpointError
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..io.rundir import find_agent_file, read_run_config

AGENT_FILE = "agent"


class Agent:
    """A policy acting on normalised observations, its critics, and its normaliser.

    Args:
        env_id: Gymnasium id of the environment it was trained on.
        modules: named modules; ``"actor"`` is required (any module with ``forward(obs)`` ->
            deterministic action and ``act(obs, deterministic, generator)``, e.g.
            :class:`~robustpo.core.nets.GaussianActor`), ``"critic"`` is V(s) when present;
            further names hold extra heads (e.g. a worst-case Q).
        normalizer: the running observation normaliser the policy sees through.
        action_low, action_high: bounds of the action space, ``(act_dim,)``; actions are
            clipped to them before they reach the environment.
        attack_eps: the l_inf radius (normalised units) this agent is attacked at by default:
            its task's standard eps (REFERENCE section 3), recorded at training.

    ``act`` takes *raw* observations; ``act_normalized`` and the modules take *normalised*
    ones, which is what attacks perturb.

    Raises:
        ValueError: no ``"actor"`` module.
    """

    def __init__(
        self, env_id: str, modules: dict[str, nn.Module], normalizer: ObservationNormalizer,
        action_low: np.ndarray, action_high: np.ndarray, attack_eps: float | None = None,
    ) -> None:
        if "actor" not in modules:
            raise ValueError(f"an agent needs an 'actor' module, got {sorted(modules)}")
        self.env_id = env_id
        self.modules = nn.ModuleDict(modules)
        self.obs_normalizer = normalizer
        self.action_low = np.asarray(action_low, dtype=np.float32)
        self.action_high = np.asarray(action_high, dtype=np.float32)
        self.obs_dim = int(normalizer.rms.mean.shape[0])
        self.act_dim = int(self.action_low.shape[0])
        self.attack_eps = None if attack_eps is None else float(attack_eps)

    @property
    def actor(self) -> nn.Module:
        """The policy module."""
        return self.modules["actor"]

    @property
    def critic(self) -> nn.Module:
        """V(s) of normalised observations ``(batch,)``.

        Raises:
            AttributeError: the agent has no ``"critic"`` module.
        """
        if "critic" not in self.modules:
            raise AttributeError(f"this {self.env_id} agent has no critic module")
        return self.modules["critic"]

    # ---- acting -------------------------------------------------------------------------
    def normalize(self, obs: np.ndarray, update: bool = False) -> torch.Tensor:
        """Raw observations ``(n, obs_dim)`` -> normalised float32 tensor (frozen by default)."""
        return torch.from_numpy(self.obs_normalizer.normalize(obs, update=update))

    @torch.no_grad()
    def act_normalized(self, obs_norm: torch.Tensor, deterministic: bool = True) -> np.ndarray:
        """Actions ``(n, act_dim)`` float32 in action units for normalised observations
        ``(n, obs_dim)``, clipped to the action bounds."""
        action = self.actor.act(obs_norm, deterministic)
        return np.clip(action.numpy(), self.action_low, self.action_high)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Act on raw observations, shape ``(obs_dim,)`` or ``(n, obs_dim)``; frozen normaliser.

        Returns:
            float32 actions in action units, clipped to ``[action_low, action_high]``:
            ``(act_dim,)`` for one observation, ``(n, act_dim)`` for a batch.
            ``deterministic=False`` samples with torch's global generator.

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
        """Weights (``<module>.<parameter>``) and normaliser statistics (``obs_rms.*``)."""
        out = {f"{name}.{k}": v for name, m in self.modules.items()
               for k, v in m.state_dict().items()}
        for k, v in self.obs_normalizer.rms.state().items():
            out[f"obs_rms.{k}"] = torch.as_tensor(v, dtype=torch.float64)
        return out

    def spec(self) -> dict[str, Any]:
        """What is needed to rebuild the (empty) modules before loading tensors.

        Raises:
            CheckpointError: a module that cannot be rebuilt (it has no ``spec``).
        """
        specs = {}
        for name, module in self.modules.items():
            if not hasattr(module, "spec"):
                raise CheckpointError(
                    f"Module {name!r} ({type(module).__name__}) of this agent cannot be saved: "
                    f"it is not one of robustpo's module kinds.")
            specs[name] = module.spec()
        return {
            "env_id": self.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
            "obs_clip": self.obs_normalizer.clip,
            "attack_eps": self.attack_eps,
            "modules": specs,
        }

    def load_tensors(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Load what :meth:`tensors` produced; raise :class:`CheckpointError` on a mismatch."""
        try:
            for name, module in self.modules.items():
                prefix = f"{name}."
                module.load_state_dict(
                    {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                )
            self.obs_normalizer.rms.load_state(
                {k: tensors[f"obs_rms.{k}"].numpy() for k in ("mean", "var", "count")}
            )
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"{source} does not fit this agent ({self.env_id}, obs {self.obs_dim}, act "
                f"{self.act_dim}, modules {', '.join(self.modules)}): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        bad = [name for name, t in self.modules.state_dict().items()
               if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise CheckpointError(
                f"{source} holds weights that are not finite (NaN or inf) in {', '.join(bad)}: "
                f"the policy diverged before it was saved. Use an earlier checkpoint of the run."
            )

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Agent:
        """Rebuild an untrained agent from :meth:`spec`. Specs written before agents held named
        modules (``hidden`` instead of ``modules``) are read as a Gaussian actor and a critic.

        Raises:
            KeyError, TypeError, ValueError: an incomplete or inconsistent spec.
        """
        specs = spec.get("modules")
        if specs is None:
            specs = {"actor": {"kind": "gaussian_actor", "obs_dim": spec["obs_dim"],
                               "act_dim": spec["act_dim"], "hidden": spec["hidden"]},
                     "critic": {"kind": "value", "obs_dim": spec["obs_dim"],
                                "hidden": spec["hidden"]}}
        modules = {name: build_module(s) for name, s in specs.items()}
        return cls(spec["env_id"], modules,
                   ObservationNormalizer(spec["obs_dim"], spec["obs_clip"]),
                   np.array(spec["action_low"]), np.array(spec["action_high"]),
                   spec.get("attack_eps"))

    def save(self, path: str | Path, evaluation: dict[str, float] | None = None) -> Path:
        """Save to ``path`` (a directory: writes ``agent.safetensors`` and ``agent.json``);
        ``evaluation``, if given, is recorded in ``agent.json`` (the evaluation that selected
        this policy during training).

        Raises:
            CheckpointError: a module that cannot be rebuilt from a spec.
        """
        meta: dict[str, Any] = {"agent": self.spec()}
        if evaluation is not None:
            meta["evaluation"] = evaluation
        return save_checkpoint(Path(path) / AGENT_FILE, self.tensors(), meta)


def gaussian_agent(
    env_id: str, obs_dim: int, act_dim: int, action_low: np.ndarray, action_high: np.ndarray,
    hidden: list[int], init_std: float = 1.0, obs_clip: float = 10.0,
    attack_eps: float | None = None,
) -> Agent:
    """The PPO family's agent: a :class:`GaussianActor` and a :class:`ValueNet` of the same
    hidden sizes (actor built first: the initialisation order fixes the parameters a seed
    gives), and a fresh normaliser clipping at ``obs_clip``."""
    actor = GaussianActor(obs_dim, act_dim, hidden, init_std)
    critic = ValueNet(obs_dim, hidden)
    return Agent(env_id, {"actor": actor, "critic": critic},
                 ObservationNormalizer(obs_dim, obs_clip), action_low, action_high, attack_eps)


def load_agent(path: str | Path) -> Agent:
    """Load an agent from a run directory, an ``agent.json`` or a checkpoint ``.json``.

    In a run directory the final ``agent.json`` is used, or else the newest checkpoint. The
    normaliser is frozen: evaluation and attacks never change it. An agent saved without its
    attack eps takes it from its run directory's config when the file lies in one.

    Raises:
        CheckpointError: nothing loadable at ``path``, or the files are corrupt or incompatible.
    """
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
    if agent.attack_eps is None:
        agent.attack_eps = _run_dir_eps(meta_path)
    agent.obs_normalizer.frozen = True
    agent.modules.eval()
    return agent


def _run_dir_eps(meta_path: Path) -> float | None:
    """``attack_eps`` of the run directory holding ``meta_path`` (the agent's file or one of
    its checkpoints), or None outside a run directory."""
    for run_dir in (meta_path.parent, meta_path.parent.parent):
        if (run_dir / "config.yaml").is_file():
            eps = read_run_config(run_dir).get("attack_eps")
            return None if eps is None else float(eps)
    return None
