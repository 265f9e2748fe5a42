"""The MuJoCo back end: `robot.MujocoRobot`, its model builder (`scene`), ground truth
(`truth`), RGB-D cameras (`cameras`), offscreen OpenGL and videos (`render`) and synthetic
calibration data (`calibration_synth`).

Nothing is imported here: ``hw/sim/__init__.py`` imports `render` to choose MuJoCo's
OpenGL backend before the first ``import mujoco``, which an import of `robot` here would
come before.
"""
