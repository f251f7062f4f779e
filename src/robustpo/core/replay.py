"""The replay buffer of the off-policy learners: preallocated tensors, uniform sampling from
a seeded generator, and its exact state for checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

import torch

FIELDS = ("obs", "actions", "rewards", "next_obs", "not_done")
SCALAR_FIELDS = ("rewards", "not_done")


def _fields(columns: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """The column blocks of the fields in :data:`FIELDS` order, scalar fields as vectors."""
    return [column.squeeze(1) if name in SCALAR_FIELDS else column
            for name, column in zip(FIELDS, columns, strict=True)]


@dataclass
class Transitions:
    """A batch of transitions, ``B`` rows each: ``obs`` and ``next_obs`` ``(B, obs_dim)`` (raw
    in the buffer, normalised once sampled by a learner that normalises), ``actions``
    ``(B, act_dim)`` executed, in action units, ``rewards`` ``(B,)`` raw, ``not_done`` ``(B,)``
    0.0 where the episode terminated (not where it was truncated: the value of a truncated
    episode's next state still counts)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions in one preallocated float32 tensor
    (``data`` holds each field's columns as a view); the oldest are overwritten once it is
    full.

    Args:
        capacity: transitions kept; obs_dim, act_dim: sizes.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = int(capacity)
        # One row per transition, the fields side by side: a sample is one gather of
        # contiguous rows (a quarter of five gathers' time, docs/benchmarks.md).
        self.widths = [obs_dim, act_dim, 1, obs_dim, 1]
        self.storage = torch.zeros(self.capacity, sum(self.widths))
        columns = self.storage.split(self.widths, dim=1)
        self.data = dict(zip(FIELDS, _fields(columns), strict=True))
        self.position = 0  # where the next transition goes
        self.size = 0

    def add(self, batch: Transitions) -> None:
        """Append ``n`` transitions (every field with ``n`` rows)."""
        n = batch.obs.shape[0]
        if self.position + n <= self.capacity:
            rows: slice | torch.Tensor = slice(self.position, self.position + n)
        else:
            rows = (self.position + torch.arange(n)) % self.capacity
        for name in FIELDS:
            self.data[name][rows] = getattr(batch, name)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Transitions:
        """``batch_size`` transitions drawn uniformly with replacement; the fields are views
        into one gathered ``(batch_size, width)`` tensor (not contiguous).

        Raises:
            ValueError: the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = torch.randint(self.size, (batch_size,), generator=generator)
        return Transitions(*_fields(self.storage.index_select(0, rows).split(self.widths, 1)))

    def state_tensors(self, prefix: str = "replay.") -> dict[str, torch.Tensor]:
        """The filled rows of every field and the counters, for a checkpoint."""
        out = {f"{prefix}{name}": self.data[name][: self.size].clone() for name in FIELDS}
        out[f"{prefix}counters"] = torch.tensor([self.position, self.size], dtype=torch.int64)
        return out

    def restore(self, tensors: dict[str, torch.Tensor], prefix: str = "replay.") -> None:
        """Load :meth:`state_tensors`' output.

        Raises:
            KeyError: a field is missing; ValueError: the saved rows do not fit this buffer.
        """
        position, size = (int(v) for v in tensors[f"{prefix}counters"])
        if not 0 <= position < self.capacity or not 0 <= size <= self.capacity:
            raise ValueError(f"a replay buffer of {size} transitions at row {position} does "
                             f"not fit a capacity of {self.capacity}")
        for name in FIELDS:
            saved = tensors[f"{prefix}{name}"]
            if saved.shape[0] != size or saved.shape[1:] != self.data[name].shape[1:]:
                raise ValueError(f"replay field {name!r} has shape {tuple(saved.shape)}, "
                                 f"expected ({size}, ...{tuple(self.data[name].shape[1:])})")
            self.data[name][:size] = saved
        self.position, self.size = position, size
