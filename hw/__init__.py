"""The hardware layer: one `robot.Robot` interface to simulated and real arms.

`robot` (the interface), `factory.make_robot` (any kind by name), `sim` (MuJoCo and
PyBullet), `drivers` (Franka, UR, xArm), `server` (the robot server and its clients),
`conformance` (the checks every backend must pass) and `benchmarks`. Imports only
`skillstack.robot` below it.
"""
