"""The hardware abstraction layer: one `Robot` interface for simulated and real arms.

A backend implements five small methods (`_connect`, `_disconnect`, `read`, `_send`,
`_send_gripper`) plus `wait_for_tick` and declares its `Capabilities`. Everything a
backend receives has already passed the `SafetyFilter`: `command()` filters, sends and
returns the command actually sent, so callers can log exactly what reached the arm.

Lifetime::

    with MujocoRobot(scene) as robot:          # connect() / disconnect()
        state = robot.read()
        robot.command(JointCommand("joint_position", q_target, state.time))
        robot.wait_for_tick()                  # sim: step physics; hardware: block until next tick
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

import numpy as np

from skillstack.robot.arms import Arm
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig, SafetyFilter
from skillstack.robot.types import Capabilities, GripperCommand, JointCommand, RobotState

_R = TypeVar("_R", bound="Robot")


class RobotError(RuntimeError):
    """The robot cannot do what was asked (not connected, unsupported mode, ...)."""


class DeviceNotConnectedError(RobotError):
    """An operation that needs a connection was called before `connect()`."""


class Robot(ABC):
    """Base class of every backend. Subclasses set ``self.capabilities`` before `connect`.

    ``arm`` is the arm's kinematic description (`robot.arms`: model, home posture, gripper
    geometry) where the project has one; skills plan with it, so a backend without one can
    run joint-level commands but no skills.
    """

    capabilities: Capabilities
    arm: Arm | None = None

    def __init__(
        self,
        capabilities: Capabilities,
        kinematics: KinematicModel | None = None,
        safety: SafetyConfig = SafetyConfig(),
    ):
        self.capabilities = capabilities
        self.kinematics = kinematics
        if self.arm is None and kinematics is not None:
            self.arm = kinematics.arm  # a driver's model (a simulator sets its own first)
        self.safety = SafetyFilter(capabilities, kinematics, safety)
        self._connected = False
        self._last_state: RobotState | None = None

    # -- lifecycle --------------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection and arm the safety filter at the measured configuration."""
        if self._connected:
            return
        self._connect()
        self._connected = True
        state = self.read()
        self.safety.reset(state.q)

    def disconnect(self) -> None:
        """Stop the arm and release the connection. Safe to call twice."""
        if not self._connected:
            return
        try:
            self.stop()
        finally:
            self._disconnect()
            self._connected = False

    def __enter__(self: _R) -> _R:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    @property
    def connected(self) -> bool:
        """True between `connect` and `disconnect`."""
        return self._connected

    # -- commands ------------------------------------------------------------------------
    def command(self, cmd: JointCommand) -> JointCommand:
        """Filter ``cmd`` through the safety filter, send the result, and return it."""
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.capabilities.name}: call connect() first")
        if cmd.mode not in self.capabilities.command_modes:
            raise RobotError(
                f"{self.capabilities.name} does not support {cmd.mode!r}; "
                f"supported modes: {', '.join(self.capabilities.command_modes)}"
            )
        state = self._last_state if self._last_state is not None else self.read()
        safe = self.safety.filter(cmd, state)
        self._send(safe)
        return safe

    def gripper(self, cmd: GripperCommand) -> GripperCommand:
        """Move the gripper; width, force and speed are clipped to the gripper's range."""
        spec = self.capabilities.gripper
        if spec is None:
            raise RobotError(f"{self.capabilities.name} has no gripper")
        values = np.array([cmd.width, cmd.force, cmd.speed], dtype=float)
        if not np.isfinite(values).all():
            raise RobotError(f"gripper command has NaN or inf: {cmd}")
        safe = GripperCommand(
            width=min(max(cmd.width, 0.0), spec.max_width),
            force=min(max(cmd.force, 0.0), spec.max_force),
            speed=min(max(cmd.speed, 1e-3), spec.max_speed),
        )
        self._send_gripper(safe)
        return safe

    def stop(self) -> None:
        """Controlled stop: hold the current commanded position (decelerating within limits)."""
        state = self._last_state if self._last_state is not None else self.read()
        hold = JointCommand("joint_position", self.safety.q_prev.copy(), state.time)
        self._send(self.safety.filter(hold, state))

    def estop(self, reason: str = "emergency stop") -> None:
        """Latch the emergency stop; every later command is replaced by a hold, and the arm
        is braked to rest (`brake`)."""
        state = self._last_state if self._last_state is not None else self.read()
        self.safety.estop(reason, state.time, hold=state.q)
        self._send(
            self.safety.filter(
                JointCommand("joint_position", self.safety.q_prev, state.time), state
            )
        )
        self.brake()

    def brake(self) -> None:
        """Bring the arm to rest now, as hard as its drives safely can, after a stop's hold
        command has been sent (an emergency or a protective stop).

        The default does nothing more: the hold command is the stop, and the arm's position
        servo decelerates to it. A backend whose drives can stop harder overrides this (the
        MuJoCo arm brakes each joint at twice its planning acceleration); while `braking`
        it ignores joint commands, and once at rest it holds where the arm stopped and
        re-arms the safety filter there (`safety.q_prev`).
        """
        return None

    @property
    def braking(self) -> bool:
        """Whether a `brake` is still bringing the arm to rest (joint commands are ignored)."""
        return False

    def reset_estop(self) -> None:
        """Clear a latched emergency stop."""
        self.safety.reset_estop()

    # -- backend interface ------------------------------------------------------------------
    @abstractmethod
    def read(self) -> RobotState:
        """Read the current state. Backends must also store it in ``self._last_state``."""

    @abstractmethod
    def wait_for_tick(self) -> None:
        """Sim: advance the physics by one control period. Hardware: block until the next tick."""

    @abstractmethod
    def _connect(self) -> None:
        """Open the backend (load the model, open the socket, ...)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the backend."""

    @abstractmethod
    def _send(self, cmd: JointCommand) -> None:
        """Send an already-filtered command to the arm."""

    @abstractmethod
    def _send_gripper(self, cmd: GripperCommand) -> None:
        """Send an already-clipped gripper command."""
