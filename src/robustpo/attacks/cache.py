"""Caches of what attacks learn about a victim (adversary policies, Q functions), keyed by
fingerprints: a changed victim or attack configuration never reuses a stale model.

A cache directory ``ROOT/<attack>-eps<eps>`` holds the learned models and ``fingerprint.json``
with the SHA-256 of the victim (every weight and normaliser statistic) and of the attack's
configuration (budget, recipe, grid, seeds). The fingerprint is written last, after every
model is saved, and removed before retraining starts: an interrupted training never leaves a
cache that looks valid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..io.checkpoint import atomic_write_text

if TYPE_CHECKING:
    from ..agents.agent import Agent
    from ..config.sections import TrainConfig

FINGERPRINT_FILE = "fingerprint.json"
# Settings of how a training run is watched, not of what it learns: left out of the recipes in
# attack fingerprints, so that such a setting never orphans the models already learned.
WATCH_SETTINGS = ("eval_every", "eval_episodes", "keep_best", "select_episodes")


def recipe_record(cfg: TrainConfig) -> dict[str, Any]:
    """The recipe an attack's learned model is trained with, as its configuration fingerprint
    records it: ``cfg.to_dict()`` without the run section's :data:`WATCH_SETTINGS`."""
    out = cfg.to_dict()
    out["run"] = {k: v for k, v in out["run"].items() if k not in WATCH_SETTINGS}
    return out


def tensors_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of named tensors: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def victim_fingerprint(agent: Agent) -> str:
    """SHA-256 of the victim's modules and observation normaliser (:meth:`Agent.tensors`)."""
    return tensors_fingerprint(agent.tensors())


def config_fingerprint(config: dict[str, Any]) -> str:
    """SHA-256 of a JSON-serialisable attack configuration (keys sorted)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def cache_directory(root: Path, name: str, eps: float) -> Path:
    """``root/<name>-eps<eps>``: where attack ``name`` keeps its models at ``eps``."""
    return Path(root) / f"{name}-eps{eps:g}"


@dataclass
class AttackCache:
    """The cache directory of one attack on one victim at one eps.

    Args:
        directory: ``ROOT/<attack>-eps<eps>``, or None to keep nothing.
        victim: :func:`victim_fingerprint` of the victim.
        config: the attack's configuration (what it trains and how); its fingerprint is kept.
    """

    directory: Path | None
    victim: str
    config: dict[str, Any]

    @classmethod
    def for_attack(cls, root: Path | None, name: str, eps: float, agent: Agent,
                   config: dict[str, Any]) -> AttackCache:
        """The cache of attack ``name`` at ``eps`` on ``agent`` under ``root`` (None: none)."""
        directory = None if root is None else cache_directory(root, name, eps)
        return cls(directory, victim_fingerprint(agent), config)

    def record(self) -> dict[str, str]:
        """The fingerprints ``{"victim", "config"}`` this cache is keyed by."""
        return {"victim": self.victim, "config": config_fingerprint(self.config)}

    def valid(self) -> bool:
        """Whether the directory holds models learned on this victim with this config."""
        if self.directory is None:
            return False
        try:
            saved = json.loads((self.directory / FINGERPRINT_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return isinstance(saved, dict) and {k: saved.get(k) for k in ("victim", "config")} \
            == self.record()

    def invalidate(self) -> None:
        """Forget the fingerprint before retraining (the models are then overwritten)."""
        if self.directory is not None:
            (self.directory / FINGERPRINT_FILE).unlink(missing_ok=True)
            self.directory.mkdir(parents=True, exist_ok=True)

    def seal(self) -> None:
        """Record the fingerprints once every model is saved."""
        if self.directory is not None:
            atomic_write_text(self.directory / FINGERPRINT_FILE,
                              json.dumps({**self.record(), "config_values": self.config},
                                         indent=1, sort_keys=True))
