"""Run directories: what a training run leaves behind, and how to find things in it.

Layout::

    RUN/config.yaml                      full resolved config
    RUN/meta.json                        robustpo, Python, torch, gymnasium, mujoco versions,
                                         git commit, command line, start time, and
                                         any change of the budget (``--resume --steps``)
    RUN/metrics.csv                      one row per training iteration (a PPO update, or
                                         1,000 TD3-family environment steps)
    RUN/tb/                              TensorBoard event files
    RUN/checkpoints/ckpt-NNNNNN.{safetensors,json}   the last ``keep_checkpoints``
    RUN/agent.{safetensors,json}         the final agent (what ``robustpo eval`` loads)
    RUN/.lock                            held while a process trains in RUN
                                         (:mod:`robustpo.io.locks`)
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import CheckpointError
from .checkpoint import CHECKPOINT_DIR, atomic_write_text


def versions() -> dict[str, str]:
    """Versions of robustpo, Python and the libraries that decide a run's numbers."""
    import gymnasium
    import mujoco
    import numpy
    import torch

    from .. import __version__

    return {
        "robustpo": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__,
        "numpy": numpy.__version__,
    }


def git_commit() -> str | None:
    """Commit of the robustpo source tree, with ``-dirty`` if it has uncommitted changes."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=src, capture_output=True, text=True, timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _provenance(time_key: str) -> dict[str, Any]:
    """The git commit, the command line and the UTC time (under ``time_key``) of an action on
    a run directory."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"git_commit": git_commit(), "command": sys.argv, time_key: now}


def write_run_metadata(run_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config.yaml`` and ``meta.json`` of a new run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    meta = {"versions": versions(), **_provenance("started"), "host": platform.node()}
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=1))


def record_budget_change(run_dir: Path, config: dict[str, Any], old_steps: int,
                         new_steps: int) -> None:
    """Rewrite ``config.yaml`` with a run's new budget and add the change to ``meta.json``'s
    ``budget_changes`` list (from, to, time, git commit, command line)."""
    meta_path = run_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path} is corrupt (not valid JSON): {exc}") from None
    meta.setdefault("budget_changes", []).append(
        {"total_steps_from": old_steps, "total_steps_to": new_steps, **_provenance("at")})
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    atomic_write_text(meta_path, json.dumps(meta, indent=1))


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The mapping in ``run_dir/config.yaml``.

    Raises:
        CheckpointError: no config.yaml, invalid YAML, or not a mapping.
    """
    path = run_dir / "config.yaml"
    if not run_dir.exists():
        raise CheckpointError(f"{run_dir} does not exist. Pass the --out directory of a "
                              f"`robustpo train` run.")
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir} is not a robustpo run directory: it has no config.yaml. "
            f"Pass the --out directory of a `robustpo train` run."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{path} is corrupt (not valid YAML): {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is corrupt: it does not hold a mapping of config keys.")
    return data


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """JSON files of the run's checkpoints, oldest first."""
    return sorted((run_dir / CHECKPOINT_DIR).glob("ckpt-*.json"))


def checkpoint_base(run_dir: Path, iteration: int) -> Path:
    """``RUN/checkpoints/ckpt-NNNNNN`` (no suffix) of ``iteration``."""
    return run_dir / CHECKPOINT_DIR / f"ckpt-{iteration:06d}"


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (JSON first, so none is half-deleted)."""
    for meta in checkpoint_paths(run_dir)[:-keep]:
        meta.unlink(missing_ok=True)
        meta.with_suffix(".safetensors").unlink(missing_ok=True)


def find_agent_file(path: Path) -> Path:
    """The JSON file to load an agent from: a file given directly, the run's final agent, or
    else its newest checkpoint.

    Raises:
        CheckpointError: ``path`` does not exist or holds no agent.
    """
    if path.is_file():
        if path.suffix != ".json":
            raise CheckpointError(
                f"{path} is not a checkpoint's .json file. Pass a run directory, its agent.json "
                f"or one of its checkpoints/ckpt-*.json files."
            )
        return path
    if not path.is_dir():
        raise CheckpointError(
            f"Run directory {path} does not exist. Train one with `robustpo train --out {path}`."
        )
    if (path / "agent.json").is_file():
        return path / "agent.json"
    ckpts = checkpoint_paths(path)
    if ckpts:
        return ckpts[-1]
    raise CheckpointError(
        f"{path} holds no agent: neither agent.json nor checkpoints/ckpt-*.json. "
        f"Was its training interrupted before the first checkpoint?"
    )


def _row_iteration(row: dict[str, str]) -> int | None:
    """A metrics row's iteration, or None for a row torn by an interrupted write."""
    try:
        return int(row["iteration"])
    except (KeyError, TypeError, ValueError):
        return None


class MetricsCSV:
    """Append rows to ``metrics.csv``; a resumed run drops rows past its checkpoint.

    Args:
        path: the CSV file; fields: its columns, in order (``iteration`` first);
        resume_iteration: the checkpoint's iteration when resuming (rows past it, and a last
            row torn by an interrupted write, are dropped), else None (a new file).
    """

    def __init__(self, path: Path, fields: list[str], resume_iteration: int | None) -> None:
        self.path, self.fields = path, fields
        rows: list[dict[str, str]] = []
        if resume_iteration is not None and path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f)
                        if (it := _row_iteration(r)) is not None and it <= resume_iteration]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in fields} for r in rows)
        atomic_write_text(path, text.getvalue())  # an interrupted resume keeps the old curve
        self._file = path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (missing fields empty) and flush."""
        self._writer.writerow({k: row.get(k, "") for k in self.fields})
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
