"""Forward kinematics and Jacobians of an arm.

MuJoCo is the kinematics engine: a private, kinematics-only copy of the arm model owns its
own `mujoco.MjData`, so the same code serves a simulated arm and a real one (whose joint
readings come from a driver). Call `update(q)` once per control tick, then read frames.
Results are views into preallocated buffers, valid until the next `update` — the control
loop runs this 1000 times a second, so nothing here allocates.
"""

from __future__ import annotations

import itertools

import mujoco
import numpy as np

from skillstack.robot.arms import Arm
from skillstack.robot.types import Pose


class KinematicsError(ValueError):
    """A frame or joint name that the model does not have; the message lists valid names."""


class KinematicModel:
    """Kinematics of one arm: ``update(q)``, then ``site_position``/``site_jacobian``."""

    def __init__(self, arm: Arm):
        self.arm = arm
        spec = arm.build_spec(with_actuators=False)
        spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
        # Only the arm joints move frames we ask about: drop the gripper's joints (and their
        # coupling), so Jacobians are contiguous (6, dof) arrays that MuJoCo's routines take
        # without a copy.
        for element in [*spec.equalities, *spec.keys]:
            spec.delete(element)
        arm_joints = set(arm.capabilities.joint_names)
        for joint in [j for j in spec.joints if j.name not in arm_joints]:
            spec.delete(joint)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.dof = arm.capabilities.dof
        adr = [self.model.joint(n).qposadr[0] for n in arm.capabilities.joint_names]
        if adr != list(range(self.dof)):
            raise KinematicsError(f"arm joints must come first in qpos, found addresses {adr}")
        self._ee_site = self.site_id(arm.ee_site)
        if self.model.nv != self.dof:
            raise KinematicsError(f"kinematic model has {self.model.nv} dofs, arm has {self.dof}")
        self._jac = np.zeros((6, self.dof))
        # Views bound once: indexing MjData arrays anew on every tick costs microseconds.
        self._qpos_arm = self.data.qpos[: self.dof]
        self._ee_pos = self.data.site_xpos[self._ee_site]
        self._ee_mat = self.data.site_xmat[self._ee_site]
        self._jacp = self._jac[:3]
        self._jacr = self._jac[3:]
        self._jac_arm = self._jac
        self._mass = np.zeros((self.dof, self.dof))
        self._bias = np.zeros(self.dof)
        self._joint_ids = [self.model.joint(n).id for n in arm.capabilities.joint_names]
        self.data.qpos[:] = self.model.qpos0
        self.update(arm.home_q)

    def site_id(self, name: str) -> int:
        """The id of site ``name``; raises `KinematicsError` listing the valid sites."""
        sid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, name)
        if sid < 0:
            valid = [self.model.site(i).name for i in range(self.model.nsite)]
            raise KinematicsError(f"unknown site {name!r}; valid sites: {valid}")
        return sid

    def update(self, q: np.ndarray) -> None:
        """Set the joint positions and recompute all frames (and what Jacobians need)."""
        self._qpos_arm[:] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def update_positions_only(self, q: np.ndarray) -> None:
        """Cheaper `update` for callers that only read frame poses, not Jacobians."""
        self._qpos_arm[:] = q
        mujoco.mj_kinematics(self.model, self.data)

    def dynamics(self, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint-space inertia matrix (dof, dof) and bias torques (dof,) at ``(q, dq)``; views.

        The inertia includes rotor armature. The bias is what opposes commanded torques on a
        gravity-compensated arm (a Panda's torque interface, the simulated arm): Coriolis
        and centrifugal torques plus viscous joint damping, gravity excluded. Leaves the
        frames updated to ``q`` (as `update` does).
        """
        m, d = self.model, self.data
        n = self.dof
        self._qpos_arm[:] = q
        d.qvel[:n] = dq
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        mujoco.mj_makeM(m, d)
        mujoco.mj_fullM(m, d, self._mass)
        gravity = m.opt.gravity.copy()
        m.opt.gravity[:] = 0.0
        try:
            mujoco.mj_rne(m, d, 0, self._bias)
        finally:
            m.opt.gravity[:] = gravity
            d.qvel[:n] = 0.0
        self._bias += m.dof_damping[:n] * dq
        return self._mass, self._bias

    def joint_reach(self) -> np.ndarray:
        """Per joint, a bound on the end effector's distance from its axis in any configuration.

        Consecutive joint anchors (and the last anchor and the end-effector site) are fixed in
        one body each, so their distances do not change with the configuration; the sum of
        those distances from joint i onward bounds how far the end effector can be from joint
        i's axis. Turning joints by ``dq`` therefore moves the end effector by at most
        ``sum(reach * abs(dq))`` (each arc is at most radius times angle), whatever the
        configuration: the safety filter's braking look-ahead rests on this bound.
        """
        anchors = [self.data.xanchor[j].copy() for j in self._joint_ids]
        anchors.append(self._ee_pos.copy())
        links = [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(anchors)]
        return np.array([sum(links[i:]) for i in range(self.dof)])

    @property
    def ee_position(self) -> np.ndarray:
        """End-effector site position (3,), a view."""
        return self._ee_pos

    @property
    def ee_rotation(self) -> np.ndarray:
        """End-effector site rotation matrix, row-major flat (9,), a view."""
        return self._ee_mat

    def ee_pose(self) -> Pose:
        """End-effector pose as a new `Pose` (allocates; not for the hot path)."""
        return self.site_pose(self._ee_site)

    def site_pose(self, site: int | str) -> Pose:
        """Pose of a site by id or name (allocates)."""
        sid = self.site_id(site) if isinstance(site, str) else site
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[sid])
        return Pose(self.data.site_xpos[sid].copy(), quat)

    def ee_jacobian(self) -> np.ndarray:
        """Geometric Jacobian (6, dof) of the end-effector site: rows linear then angular."""
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._ee_site)
        return self._jac_arm

    def site_jacobian(self, site: int) -> np.ndarray:
        """Geometric Jacobian (6, dof) of site ``site`` in the world frame, a view."""
        mujoco.mj_jacSite(self.model, self.data, self._jac[:3], self._jac[3:], site)
        return self._jac[:, : self.dof]
