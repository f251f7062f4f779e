"""Checkpoint files: safetensors tensors plus a JSON sidecar, written atomically, never unpickled.

A checkpoint ``NAME`` is two files: ``NAME.safetensors`` (tensors) and ``NAME.json``
(metadata and the SHA-256 of the tensor file). The tensor file is written first and the JSON
last, each through a temporary file and ``os.replace``; so a checkpoint exists only once both
are complete. Replacing a checkpoint of the same name (an agent, a cached attacker) keeps the
old tensors as ``NAME.safetensors.prev`` until the new JSON is in place, so a crash between
the two writes leaves the old pair loadable: :func:`load_checkpoint` falls back to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import CheckpointError

CHECKPOINT_DIR = "checkpoints"  # a run directory's checkpoints, newest last

FORMAT = "robustpo-checkpoint"
FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; run files are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode())


def save_checkpoint(base: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``base.safetensors`` and ``base.json`` atomically; returns the JSON path.

    Args:
        base: path without suffix, e.g. ``run/checkpoints/ckpt-000100``; the suffixes are
            appended, so a dot in its name stays (``q-eps0.05`` -> ``q-eps0.05.json``).
        tensors: name -> tensor (any dtype; made contiguous and detached).
        meta: JSON-serialisable metadata (config, iteration, normaliser statistics...).

    Raises:
        OSError: a file cannot be written. Each write is atomic; should the JSON fail after
            the tensors were replaced, :func:`load_checkpoint` loads the previous pair.
        TypeError: ``meta`` is not JSON-serialisable (nothing is written).
    """
    data = st_save({k: v.detach().contiguous() for k, v in tensors.items()})
    weights = base.parent / f"{base.name}.safetensors"
    record = json.dumps({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": weights.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "meta": meta,
    }, indent=1, sort_keys=True)  # before any write: bad metadata must not orphan new tensors
    meta_path = base.parent / f"{base.name}.json"
    previous = _previous_weights(weights)
    previous.unlink(missing_ok=True)
    if weights.is_file() and meta_path.is_file():
        try:  # the old JSON's tensors, kept until the new JSON replaces it
            os.link(weights, previous)
        except OSError:  # a file system without hard links
            shutil.copyfile(weights, previous)
    atomic_write_bytes(weights, data)
    atomic_write_text(meta_path, record)
    previous.unlink(missing_ok=True)
    return meta_path


def _previous_weights(weights: Path) -> Path:
    return weights.with_name(f"{weights.name}.prev")


def _read_record(meta_path: Path) -> tuple[Path, str, dict[str, Any]]:
    """The weights path, SHA-256 and meta recorded in a checkpoint's JSON.

    Raises:
        CheckpointError: the file is missing, malformed or of another format version.
    """
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise CheckpointError(
            f"Checkpoint metadata {meta_path} does not exist. Pass a run directory made by "
            f"`robustpo train` or the .json file of one of its checkpoints."
        )
    try:
        record = json.loads(meta_path.read_text())
        fmt, version = record["format"], record["format_version"]
        weights = meta_path.parent / record["weights"]
        digest, meta = record["sha256"], record["meta"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"Checkpoint metadata {meta_path} is corrupt or not a robustpo checkpoint ({exc!r}). "
            f"{_recovery(meta_path)}"
        ) from None
    if fmt != FORMAT or version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path} is a {fmt!r} checkpoint of format version {version}; this robustpo "
            f"reads {FORMAT!r} version {FORMAT_VERSION}. Use the robustpo release that wrote it."
        )
    return weights, digest, meta


def read_checkpoint_meta(meta_path: Path) -> dict[str, Any]:
    """The metadata of a checkpoint written by :func:`save_checkpoint`, without reading its
    tensors (a TD3 checkpoint's replay buffer is large).

    Raises:
        CheckpointError: the JSON is missing, malformed or of another format version.
    """
    return _read_record(meta_path)[2]


def load_checkpoint(meta_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(tensors, meta)``.

    Raises:
        CheckpointError: a file is missing, the JSON is malformed or of another format version,
            or the tensor file does not match its recorded SHA-256 (truncated or corrupt).
    """
    meta_path = Path(meta_path)
    weights, digest, meta = _read_record(meta_path)
    data = weights.read_bytes() if weights.is_file() else None
    intact = data is not None and hashlib.sha256(data).hexdigest() == digest
    previous = _previous_weights(weights)
    if not intact and previous.is_file():  # hashed once: a TD3 checkpoint holds its buffer
        old = previous.read_bytes()
        if hashlib.sha256(old).hexdigest() == digest:
            warnings.warn(f"{weights} does not match {meta_path.name}: a save was interrupted "
                          f"between its two writes. Loading the previous checkpoint from "
                          f"{previous.name}.", RuntimeWarning, stacklevel=2)
            data, intact = old, True
    if data is None:
        raise CheckpointError(
            f"Checkpoint weights {weights} are missing (its metadata {meta_path} exists). "
            f"{_recovery(meta_path)}"
        )
    if not intact:
        raise CheckpointError(
            f"Checkpoint weights {weights} are corrupt: their SHA-256 does not match the one "
            f"recorded in {meta_path.name} (the file was truncated or changed). "
            f"{_recovery(meta_path)}"
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint weights {weights} cannot be read: {exc}. "
                              f"{_recovery(meta_path)}") from None
    return tensors, meta


def _recovery(meta_path: Path) -> str:
    """What to do about a damaged checkpoint: a training run keeps earlier ones beside it
    (``checkpoints/``); an agent file (a run's, an export's, the zoo's) has no earlier copy."""
    if meta_path.parent.name == CHECKPOINT_DIR:
        return (f"Delete {meta_path.name} and its weights file to fall back to the run's "
                f"previous checkpoint.")
    return ("No earlier copy is kept beside it: restore the file from a copy (`git checkout` "
            "for zoo/ and agents/ entries), or train the agent again.")
