"""Tests for the Panda description (robot.arms.panda) and robot.kinematics.KinematicModel."""

from __future__ import annotations

import re
from pathlib import Path

import mujoco
import numpy as np
import pytest

from skillstack.robot.arms import ARMS, get_arm, panda
from skillstack.robot.kinematics import KinematicModel, KinematicsError
from skillstack.robot.rotations import quat_conj, quat_mul, quat_to_matrix, quat_to_rotvec
from skillstack.robot.types import COMMAND_MODES

ARM = get_arm("panda")
CAPS = ARM.capabilities
FD_STEP = 1e-6  # rad, central-difference step
JAC_TOL = 1e-6


@pytest.fixture(scope="module")
def kin() -> KinematicModel:
    return KinematicModel(ARM)


def random_configs(n: int, seed: int, shrink: float = 0.1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(CAPS.joint_lower + shrink, CAPS.joint_upper - shrink) for _ in range(n)]


# -- quaternion helpers written here, independent of MuJoCo --------------------------------


def ee_pos_quat(kin: KinematicModel, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kin.update(q)
    pose = kin.ee_pose()
    return pose.position.copy(), pose.quat.copy()


# -- the Panda constants ----------------------------------------------------------------
def test_joint_limit_arrays_have_one_entry_per_joint():
    for arr in (
        panda.JOINT_LOWER,
        panda.JOINT_UPPER,
        panda.VELOCITY_LIMIT,
        panda.ACCELERATION_LIMIT,
        panda.TORQUE_LIMIT,
        panda.HOME_Q,
    ):
        assert arr.shape == (panda.DOF,)
        assert np.isfinite(arr).all()
    assert len(panda.JOINT_NAMES) == panda.DOF == 7
    assert len(set(panda.JOINT_NAMES)) == panda.DOF


def test_position_limits_are_ordered_and_home_is_strictly_inside():
    assert (panda.JOINT_LOWER < panda.JOINT_UPPER).all()
    assert (panda.HOME_Q > panda.JOINT_LOWER).all()
    assert (panda.HOME_Q < panda.JOINT_UPPER).all()
    # Not merely inside: home leaves room to move every joint both ways.
    room = np.minimum(panda.HOME_Q - panda.JOINT_LOWER, panda.JOINT_UPPER - panda.HOME_Q)
    assert room.min() > 0.5


def test_rate_and_torque_limits_are_positive():
    assert (panda.VELOCITY_LIMIT > 0).all()
    assert (panda.ACCELERATION_LIMIT > 0).all()
    assert (panda.TORQUE_LIMIT > 0).all()
    assert panda.CONTROL_RATE_HZ > 0
    assert panda.GRIPPER.max_width == pytest.approx(2 * panda.FINGER_TRAVEL)
    assert panda.GRIPPER.max_force > 0 and panda.GRIPPER.max_speed > 0


def test_capabilities_match_module_constants():
    caps = panda.capabilities()
    assert caps.name == panda.NAME == "panda"
    assert caps.dof == panda.DOF
    assert caps.joint_names == panda.JOINT_NAMES
    np.testing.assert_array_equal(caps.joint_lower, panda.JOINT_LOWER)
    np.testing.assert_array_equal(caps.joint_upper, panda.JOINT_UPPER)
    np.testing.assert_array_equal(caps.velocity_limit, panda.VELOCITY_LIMIT)
    np.testing.assert_array_equal(caps.acceleration_limit, panda.ACCELERATION_LIMIT)
    np.testing.assert_array_equal(caps.torque_limit, panda.TORQUE_LIMIT)
    assert caps.control_rate_hz == panda.CONTROL_RATE_HZ
    assert caps.control_dt == pytest.approx(0.001)
    assert set(caps.command_modes) == set(COMMAND_MODES)
    assert caps.gripper == panda.GRIPPER
    assert panda.capabilities(500.0).control_dt == pytest.approx(0.002)


def test_capabilities_hold_copies_of_the_limits():
    caps = panda.capabilities()
    caps.joint_upper[0] = 100.0
    caps.velocity_limit[:] = 0.0
    assert panda.JOINT_UPPER[0] == pytest.approx(2.8973)
    assert (panda.VELOCITY_LIMIT > 0).all()
    assert panda.capabilities().joint_upper[0] == pytest.approx(2.8973)


def test_registry_entry_is_the_panda_module():
    assert ARMS["panda"] is ARM
    np.testing.assert_array_equal(ARM.home_q, panda.HOME_Q)
    assert ARM.ee_site == panda.EE_SITE
    assert ARM.finger_joints == panda.FINGER_JOINTS
    np.testing.assert_array_equal(ARM.capabilities.joint_upper, panda.JOINT_UPPER)


def test_unknown_arm_lists_available_arms():
    with pytest.raises(ValueError, match="panda"):
        get_arm("ur5e")


def test_urdf_comes_from_pybullet_data():
    import pybullet_data

    path = panda.urdf_path()
    assert path.is_file()
    assert path.name == "panda.urdf"
    assert path.resolve().is_relative_to(Path(pybullet_data.getDataPath()).resolve())
    text = path.read_text()
    for name in panda.JOINT_NAMES:
        assert f'name="{name}"' in text


def test_declared_limits_lie_within_the_urdf_limits():
    """The FCI limits are the (tighter) software limits inside the mechanical ones."""
    text = panda.urdf_path().read_text()
    for i, name in enumerate(panda.JOINT_NAMES):
        m = re.search(rf'<joint name="{name}".*?<limit([^>]*)>', text, re.S)
        assert m, name
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        assert float(attrs["lower"]) <= panda.JOINT_LOWER[i]
        assert float(attrs["upper"]) >= panda.JOINT_UPPER[i]
        assert float(attrs["velocity"]) == pytest.approx(panda.VELOCITY_LIMIT[i])
        assert float(attrs["effort"]) == pytest.approx(panda.TORQUE_LIMIT[i])


def test_compiled_model_uses_the_declared_joint_ranges_and_home_key():
    model = panda.build_spec().compile()
    for i, name in enumerate(panda.JOINT_NAMES):
        jid = model.joint(name).id
        np.testing.assert_allclose(
            model.jnt_range[jid], [panda.JOINT_LOWER[i], panda.JOINT_UPPER[i]], rtol=0, atol=1e-12
        )
        assert model.jnt_qposadr[jid] == i
    key = model.key("home")
    np.testing.assert_allclose(key.qpos[: panda.DOF], panda.HOME_Q, atol=1e-12)


# -- KinematicModel ---------------------------------------------------------------------
def test_model_starts_at_home(kin):
    fresh = KinematicModel(ARM)
    np.testing.assert_array_equal(fresh.data.qpos[: fresh.dof], ARM.home_q)


def test_home_pose_is_above_the_table_in_front_pointing_down(kin):
    kin.update(ARM.home_q)
    p = kin.ee_position
    assert p[0] == pytest.approx(0.31, abs=0.01)
    assert p[1] == pytest.approx(0.0, abs=1e-6)
    assert p[2] == pytest.approx(0.49, abs=0.01)
    R = kin.ee_rotation.reshape(3, 3)
    np.testing.assert_allclose(R[:, 2], [0.0, 0.0, -1.0], atol=1e-6)  # approach axis down
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_ee_pose_quaternion_is_unit_and_matches_rotation(kin):
    for q in random_configs(5, seed=3):
        kin.update(q)
        pose = kin.ee_pose()
        assert np.linalg.norm(pose.quat) == pytest.approx(1.0, abs=1e-12)
        R = kin.ee_rotation.reshape(3, 3)
        np.testing.assert_allclose(quat_to_matrix(pose.quat), R, atol=1e-12)
        np.testing.assert_array_equal(pose.position, kin.ee_position)


def test_update_positions_only_gives_the_same_frames(kin):
    q = random_configs(1, seed=4)[0]
    kin.update(q)
    full = kin.ee_position.copy(), kin.ee_rotation.copy()
    kin.update(ARM.home_q)
    kin.update_positions_only(q)
    np.testing.assert_array_equal(kin.ee_position, full[0])
    np.testing.assert_array_equal(kin.ee_rotation, full[1])


@pytest.mark.parametrize("q", random_configs(6, seed=11), ids=lambda q: "q")
def test_position_jacobian_matches_finite_differences(kin, q):
    kin.update(q)
    J = kin.ee_jacobian().copy()
    assert J.shape == (6, CAPS.dof)
    fd = np.zeros((3, CAPS.dof))
    for i in range(CAPS.dof):
        dq = np.zeros(CAPS.dof)
        dq[i] = FD_STEP
        p_plus, _ = ee_pos_quat(kin, q + dq)
        p_minus, _ = ee_pos_quat(kin, q - dq)
        fd[:, i] = (p_plus - p_minus) / (2 * FD_STEP)
    np.testing.assert_allclose(J[:3], fd, rtol=0, atol=JAC_TOL)


@pytest.mark.parametrize("q", random_configs(6, seed=12), ids=lambda q: "q")
def test_rotation_jacobian_matches_finite_differences(kin, q):
    kin.update(q)
    J = kin.ee_jacobian().copy()
    fd = np.zeros((3, CAPS.dof))
    for i in range(CAPS.dof):
        dq = np.zeros(CAPS.dof)
        dq[i] = FD_STEP
        _, q_plus = ee_pos_quat(kin, q + dq)
        _, q_minus = ee_pos_quat(kin, q - dq)
        # R+ = exp([w] 2h) R-: the difference q+ q-^-1 is a world-frame rotation.
        fd[:, i] = quat_to_rotvec(quat_mul(q_plus, quat_conj(q_minus))) / (2 * FD_STEP)
    np.testing.assert_allclose(J[3:], fd, rtol=0, atol=JAC_TOL)
    # Revolute joints: each column of the rotational Jacobian is a unit joint axis.
    np.testing.assert_allclose(np.linalg.norm(J[3:], axis=0), 1.0, atol=1e-9)


def test_jacobian_predicts_small_motions(kin):
    """A combined small joint motion moves the ee by J dq to second order."""
    rng = np.random.default_rng(5)
    q = random_configs(1, seed=6)[0]
    dq = rng.normal(size=CAPS.dof) * 1e-4
    kin.update(q)
    J = kin.ee_jacobian().copy()
    p0, q0 = ee_pos_quat(kin, q)
    p1, q1 = ee_pos_quat(kin, q + dq)
    np.testing.assert_allclose(p1 - p0, J[:3] @ dq, atol=1e-7)
    np.testing.assert_allclose(quat_to_rotvec(quat_mul(q1, quat_conj(q0))), J[3:] @ dq, atol=1e-7)


def test_site_jacobian_by_id_equals_ee_jacobian(kin):
    kin.update(random_configs(1, seed=7)[0])
    J = kin.ee_jacobian().copy()
    np.testing.assert_array_equal(kin.site_jacobian(kin.site_id("ee")), J)


def test_unknown_site_raises_kinematics_error_listing_valid_names(kin):
    with pytest.raises(KinematicsError) as info:
        kin.site_id("gripper_tip")
    message = str(info.value)
    assert "gripper_tip" in message
    valid = [kin.model.site(i).name for i in range(kin.model.nsite)]
    assert valid and all(name in message for name in valid)
    assert isinstance(info.value, ValueError)
    with pytest.raises(KinematicsError, match="ee"):
        kin.site_pose("nope")


def test_site_pose_by_name_and_id_agree(kin):
    kin.update(random_configs(1, seed=8)[0])
    by_name = kin.site_pose("ee")
    by_id = kin.site_pose(kin.site_id("ee"))
    np.testing.assert_array_equal(by_name.position, by_id.position)
    np.testing.assert_array_equal(by_name.quat, by_id.quat)


def test_frame_results_are_views_updated_by_update():
    kin = KinematicModel(ARM)
    q_a, q_b = random_configs(2, seed=9)
    reference = KinematicModel(ARM)
    reference.update(q_b)
    expected_pos = reference.ee_position.copy()
    expected_rot = reference.ee_rotation.copy()
    expected_jac = reference.ee_jacobian().copy()

    kin.update(q_a)
    pos, rot, jac = kin.ee_position, kin.ee_rotation, kin.ee_jacobian()
    pose_a = kin.ee_pose()
    old_pos = pos.copy()
    kin.update(q_b)
    # The arrays handed out before update() now show the new configuration ...
    np.testing.assert_array_equal(pos, expected_pos)
    np.testing.assert_array_equal(rot, expected_rot)
    jac_b = kin.ee_jacobian()
    assert np.shares_memory(jac, jac_b)
    np.testing.assert_array_equal(jac, expected_jac)
    assert kin.ee_position is pos or np.shares_memory(kin.ee_position, pos)
    # ... while ee_pose() returned an independent copy.
    assert not np.shares_memory(pose_a.position, pos)
    np.testing.assert_array_equal(pose_a.position, old_pos)
    assert not np.array_equal(old_pos, pos)


def test_two_models_do_not_share_state():
    a, b = KinematicModel(ARM), KinematicModel(ARM)
    a.update(random_configs(1, seed=10)[0])
    b.update(ARM.home_q)
    assert not np.allclose(a.ee_position, b.ee_position)
    assert a.data is not b.data


def test_kinematic_model_has_no_actuators_and_no_contacts(kin):
    assert kin.model.nu == 0
    assert kin.model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT
