"""Policies that see: a grasp policy that finds its object in camera images, not in the state.

``skillstack train grasp --images`` trains on a dataset collected with ``--images``. The
policy never reads the object's pose. It gets:

* the two cameras of the demonstrations (`skills.training.images.IMAGE_KEYS`: the fixed
  scene camera and the wrist camera), resized to `IMAGE_INPUT` pixels square;
* the hand: its position, orientation, finger width and gripper command (the first
  features of `skills.training.features.FEATURE_NAMES`);
* what the call names: the object's kind and extents, the template, and its colour
  (`VISION_FEATURE_NAMES`). The colour is how the policy tells the object from the other
  one on the table, as a person told "the red block" would; the planner's world model
  knows it (`skills.world.ObjectState.color`).

Each camera has its own small CNN, trained from scratch (no downloaded weights): three
convolutions whose channels are modulated by the call (FiLM, so the network can look for
*this* colour and size), then a spatial softmax that turns each channel into the image
position where it responds most (robomimic's visuomotor encoder does the same). An MLP maps
those keypoints and the hand's features to a chunk of actions, as the state policy's head
does. Training shifts the images randomly by up to `SHIFT_PX` pixels (DrQ's augmentation)
and uses every `FRAME_STRIDE`-th sample, since consecutive frames at 20 Hz are nearly
alike; the corrective augmentation of the state policies is not used (it moves the hand in
the features, which the wrist image would contradict).

At run time `skills.training.policy_primitives.VisionGraspPolicy` renders both cameras
whenever the policy needs a new chunk (`skills.training.images.CameraImages`; simulated
MuJoCo arms only) and ends the call without the object's pose either: done once the
closed fingers hold something and the hand rose the lift. The success test is the
scripted grasp's, on the simulator's truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from skillstack.robot.scene.model import COLORS
from skillstack.skills.training.dataset import ACTION_DIM, DatasetError, Episode
from skillstack.skills.training.features import (
    FEATURE_NAMES,
    CallContext,
    context_from_episode,
    hand_features,
)
from skillstack.skills.training.heads import ChunkPolicy, _mlp
from skillstack.skills.training.images import IMAGE_KEYS
from skillstack.skills.training.torch_data import ChunkDataset

VISION_SKILLS = ("grasp",)
IMAGE_INPUT = 64  # px: recorded images are resized (area averaging) to this square
FRAME_STRIDE = 2  # training uses every 2nd sample
SHIFT_PX = 4  # random-shift augmentation in training (pixels, each way)
CHANNELS = (16, 32, 32)  # the encoder's convolutions
HAND_FEATURES = FEATURE_NAMES[:11]  # position, rot6d, finger width, gripper command
CONTEXT_FEATURES = FEATURE_NAMES[16:]  # extents, kind one-hot, template one-hot
VISION_FEATURE_NAMES: tuple[str, ...] = (
    *HAND_FEATURES,
    *CONTEXT_FEATURES,
    "color_r",
    "color_g",
    "color_b",
)
_HAND = len(HAND_FEATURES)


def color_rgb(color: str | Sequence[float]) -> np.ndarray:
    """RGB in [0, 1] of a colour name of `robot.scene.model.COLORS` or an RGB(A) tuple
    (an unknown name is grey)."""
    if isinstance(color, str):
        return np.asarray(COLORS.get(color, COLORS["gray"])[:3], dtype=float)
    return np.asarray(tuple(color)[:3], dtype=float)


def vision_features(
    obs: dict[str, np.ndarray],
    gripper_command: np.ndarray,
    context: CallContext,
    color: np.ndarray,
    max_width: float,
) -> np.ndarray:
    """Feature rows (T, len(`VISION_FEATURE_NAMES`)): the hand and the call, no object pose."""
    hand = hand_features(obs, gripper_command, max_width)
    call = np.concatenate([context.vector(), np.asarray(color, dtype=float)])
    out = np.concatenate([hand, np.broadcast_to(call, (len(hand), len(call)))], axis=1)
    assert out.shape[1] == len(VISION_FEATURE_NAMES), out.shape
    return out


def episode_color(episode: Episode) -> np.ndarray:
    """The grasped object's colour as a demonstration stores it in its context."""
    color = episode.context.get("color")
    if not isinstance(color, list) or len(color) != 3:
        raise DatasetError(
            f"demo seed {episode.seed}: recorded without the object's colour; collect it "
            "again with this version to train a policy on images"
        )
    return np.asarray(color, dtype=float)


def resize_images(frames: np.ndarray, size: int = IMAGE_INPUT) -> np.ndarray:
    """uint8 (T, H, W, 3) → uint8 (T, 3, size, size), area-averaged (OpenCV)."""
    import cv2

    frames = np.asarray(frames)
    if frames.shape[1:3] != (size, size):
        frames = np.stack(
            [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
        )
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2))


class VisionChunkDataset(ChunkDataset):
    """`ChunkDataset` with every `FRAME_STRIDE`-th sample's images: items are
    (features, action chunk, padding, images uint8 (B, cameras, 3, S, S))."""

    def __init__(self, features, actions, images: Sequence[np.ndarray], chunk: int):
        super().__init__(features, actions, chunk)
        self.images = torch.as_tensor(np.concatenate(images))
        starts = np.cumsum([0, *(len(a) for a in actions)])[:-1]
        self._keep = torch.cat(  # the sample behind each item (and each row of ``images``)
            [torch.arange(0, len(a), FRAME_STRIDE) + int(s) for a, s in zip(actions, starts)]
        )

    @classmethod
    def from_named(
        cls, reader, named: Sequence[tuple[str, Episode]], chunk: int, max_width: float
    ) -> VisionChunkDataset:
        """The episodes ``named`` (name, episode) of ``reader``, their images read from it."""
        feats, actions, images = [], [], []
        keys = list(IMAGE_KEYS)
        for name, episode in named:
            commands = np.concatenate([[max_width], episode.actions[:-1, 6]])
            context = context_from_episode("grasp", episode)
            assert isinstance(context, CallContext)
            feats.append(
                vision_features(episode.obs, commands, context, episode_color(episode), max_width)
            )
            actions.append(np.asarray(episode.actions))
            frames = reader.images(name, keys)
            kept = {k: frames[k][::FRAME_STRIDE] for k in keys}
            images.append(np.stack([resize_images(kept[k]) for k in keys], axis=1))
        return cls(feats, actions, images, chunk)

    def __len__(self) -> int:
        return len(self._keep)

    def __getitem__(self, index):
        rows = torch.as_tensor(index)
        feats, actions, pad = super().__getitem__(self._keep[rows])
        return feats, actions, pad, self.images[rows]


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) feature maps → (B, 2C): the expected image position (x, y in [-1, 1]) of
    each channel's softmax over the pixels."""

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Keypoints (B, 2C): the x of every channel, then the y of every channel."""
        b, c, h, w = maps.shape
        weights = maps.flatten(2).softmax(-1).view(b, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device)
        x = (weights.sum(2) * xs).sum(-1)
        y = (weights.sum(3) * ys).sum(-1)
        return torch.cat([x, y], -1)


class ImageEncoder(nn.Module):
    """One camera's CNN: convolutions modulated by the call (FiLM), spatial-softmax keypoints."""

    def __init__(self, cond_dim: int):
        super().__init__()
        convs, films, norms = [], [], []
        c_in = 3
        for i, c in enumerate(CHANNELS):
            kernel, stride = (5, 2) if i == 0 else (3, 2 if i == 1 else 1)
            convs.append(nn.Conv2d(c_in, c, kernel, stride))
            norms.append(nn.GroupNorm(4, c))
            films.append(nn.Linear(cond_dim, 2 * c))
            c_in = c
        self.convs, self.norms, self.films = (
            nn.ModuleList(convs),
            nn.ModuleList(norms),
            nn.ModuleList(films),
        )
        self.keypoints = SpatialSoftmax()

    @property
    def out_dim(self) -> int:
        """Numbers per image (x and y of every last-layer channel)."""
        return 2 * CHANNELS[-1]

    def forward(self, images: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Float images (B, 3, S, S) in [0, 1] and the call (B, cond) → keypoints (B, out)."""
        h = images
        for i, (conv, norm, film) in enumerate(zip(self.convs, self.norms, self.films)):
            scale, shift = film(cond).chunk(2, -1)
            h = norm(conv(h)) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            if i + 1 < len(self.convs):
                h = torch.relu(h)
        return self.keypoints(h)


class VisionChunkMLP(ChunkPolicy):
    """Images and hand features → ``chunk`` normalised actions."""

    def __init__(self, config):
        super().__init__(config)
        cond_dim = config.feature_dim - _HAND
        self.encoders = nn.ModuleList(ImageEncoder(cond_dim) for _ in config.images)
        width = config.feature_dim + sum(e.out_dim for e in self.encoders)
        self.net = _mlp([width] + [config.hidden] * config.layers, config.chunk * ACTION_DIM)

    def forward(self, normalised: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, F) and uint8 images (B, cameras, 3, S, S) → normalised
        chunks (B, chunk, 7); in training the images are shifted at random."""
        pixels = images.float() / 255.0
        if self.training:
            pixels = random_shift(pixels.flatten(0, 1), SHIFT_PX).view(pixels.shape)
        cond = normalised[:, _HAND:]
        keypoints = [enc(pixels[:, i], cond) for i, enc in enumerate(self.encoders)]
        out = self.net(torch.cat([normalised, *keypoints], -1))
        return out.view(-1, self.config.chunk, ACTION_DIM)

    @torch.no_grad()
    def predict(self, features: np.ndarray, images: dict[str, np.ndarray] | None = None):
        """Raw features (F,) and each camera's uint8 image (H, W, 3) → raw actions (chunk, 7)."""
        if images is None:
            raise ValueError("this policy needs camera images")
        stacked = np.stack([resize_images(images[k][None])[0] for k in self.config.images])
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)).view(1, -1)
        pix = torch.as_tensor(stacked)[None]
        out = self(self.normalise_features(x), pix)[0] * self.action_std + self.action_mean
        return out.numpy().astype(float)


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image (N, C, S, S) by up to ``pad`` pixels each way, edges replicated."""
    n, _, s, _ = images.shape
    padded = nn.functional.pad(images, (pad,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2, n))
    rows = (dy[:, None] + torch.arange(s))[:, :, None].expand(n, s, s)
    cols = (dx[:, None] + torch.arange(s))[:, None, :].expand(n, s, s)
    index = (rows * (s + 2 * pad) + cols).flatten(1)
    flat = padded.flatten(2)
    return flat.gather(2, index[:, None, :].expand(-1, flat.shape[1], -1)).view(images.shape)
