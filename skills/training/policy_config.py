"""The configuration of a policy: everything needed to rebuild and run it.

A checkpoint stores it (`skills.training.policy.save_checkpoint`); the heads
(`skills.training.heads`) are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skillstack.skills.training.dataset import ACTION_LAYOUT, OBS_KEYS
from skillstack.skills.training.features import FEATURE_NAMES


@dataclass
class PolicyConfig:
    """Everything needed to rebuild and run a policy (stored in its checkpoint)."""

    skill: str
    arm: str = "panda"  # the arm of the demonstrations (joint features are that arm's)
    chunk: int = 20
    rate_hz: float = 20.0
    head: str = "mlp"  # network (`skills.training.heads.HEADS`)
    hidden: int = 256  # hidden width (the transformer: its model width)
    layers: int = 3  # hidden layers (the transformer: encoder and decoder layers each)
    diffusion_steps: int = 100  # diffusion head: noise levels in training
    denoise_steps: int = 10  # diffusion head: DDIM steps per prediction
    images: list[str] = field(default_factory=list)  # camera inputs (`skills.training.vision`)
    image_size: int = 0  # px: the cameras' square images as recorded and rendered
    skills: list[str] = field(default_factory=list)  # a multi-task policy's skills
    skill_open_width: dict[str, float] = field(default_factory=dict)  # multi-task: per skill
    skill_max_duration_s: dict[str, float] = field(default_factory=dict)  # multi-task
    obs_keys: dict[str, int] = field(default_factory=lambda: dict(OBS_KEYS))
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    action_layout: list[str] = field(default_factory=lambda: list(ACTION_LAYOUT))
    gripper_open_width: float = 0.08  # m: the open command of the demonstrations
    max_duration_s: float = 15.0  # longest successful demonstration (s)
    execution: str = "receding"  # how chunks are executed (`ChunkExecutor`)
    execute_steps: int = 0  # actions executed per chunk with "receding" (0: the whole chunk)
    ensemble_decay: float = 0.1  # temporal-ensembling weight exp(-decay * age in steps)
    data_path: str = ""
    train_seeds: list[int] = field(default_factory=list)  # episode seeds of the training data
    seed: int = 0
    epochs: int = 0
    skillstack_version: str = "unknown"

    @property
    def feature_dim(self) -> int:
        """Length of the input vector."""
        return len(self.feature_names)
