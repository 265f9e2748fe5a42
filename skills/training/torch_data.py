"""Demonstrations as torch batches: a `Dataset` of (features, action chunk, padding mask).

    reader = open_dataset("data/grasp.hdf5", "grasp")
    data = ChunkDataset.from_reader(reader, chunk=10)
    for features, actions, pad in loader(data, batch_size=256, seed=0):
        ...  # (B, F) float32, (B, chunk, 7) float32, (B, chunk) bool

Item ``i`` is sample ``i`` of the concatenated episodes: its features
(`skills.training.features`), the next ``chunk`` actions of its episode (the last action
repeated past the end) and ``pad``, True where the chunk ran past the end. Indexing with an
array of indices returns a whole batch at once, which is how `loader` uses it (one tensor
gather per batch instead of a Python loop over samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from skillstack.skills.training.dataset import Episode
from skillstack.skills.training.dataset_reader import DatasetReader
from skillstack.skills.training.features import episode_features


class ChunkDataset(Dataset):
    """Samples of episodes with their future action chunks (all held in memory)."""

    def __init__(self, features: Sequence[np.ndarray], actions: Sequence[np.ndarray], chunk: int):
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        if not features or len(features) != len(actions):
            raise ValueError("need one feature array per episode, and at least one episode")
        self.chunk = chunk
        self.features = torch.as_tensor(np.concatenate(features), dtype=torch.float32)
        self.actions = torch.as_tensor(np.concatenate(actions), dtype=torch.float32)
        lengths = torch.as_tensor([len(a) for a in actions])
        starts = torch.cumsum(lengths, 0) - lengths
        self._ends = torch.repeat_interleave(starts + lengths, lengths)  # one past episode end
        self._steps = torch.arange(chunk)

    @classmethod
    def from_episodes(
        cls, skill: str, episodes: Sequence[Episode], chunk: int, max_width: float
    ) -> ChunkDataset:
        """Features and actions of ``episodes`` (see `episode_features`)."""
        feats = [episode_features(skill, e, max_width) for e in episodes]
        return cls(feats, [np.asarray(e.actions) for e in episodes], chunk)

    @classmethod
    def from_reader(
        cls, reader: DatasetReader, chunk: int, max_width: float | None = None
    ) -> ChunkDataset:
        """Every successful episode of a dataset (``max_width``: the open command; default
        the widest gripper command in the data)."""
        episodes = reader.episodes()
        if max_width is None:
            max_width = open_width(episodes)
        return cls.from_episodes(reader.skill, episodes, chunk, max_width)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index):
        idx = torch.as_tensor(index)
        future = idx.unsqueeze(-1) + self._steps
        end = self._ends[idx].unsqueeze(-1)
        pad = future >= end
        future = torch.minimum(future, end - 1)
        return self.features[idx], self.actions[future], pad


def open_width(episodes: Sequence[Episode]) -> float:
    """The open-gripper command of demonstrations: the widest commanded width."""
    return float(max(np.max(e.actions[:, 6]) for e in episodes))


def loader(data: ChunkDataset, batch_size: int, seed: int, shuffle: bool = True) -> DataLoader:
    """Batches of ``data`` (shuffled the same way for the same ``seed``); the last may be
    smaller."""
    sampler: Sampler[int]
    if shuffle:
        sampler = RandomSampler(data, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(data)
    batches = BatchSampler(sampler, batch_size, drop_last=False)
    return DataLoader(data, sampler=batches, batch_size=None)
