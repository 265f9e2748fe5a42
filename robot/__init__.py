"""The robot layer: what every backend and every skill shares, independent of any simulator.

`types` (poses, robot state, commands; SI units), `kinematics`, `ik` and `ik_solve`,
`trajectory` and `motion` (Cartesian and joint-space policies), `safety` (the command
filter), `loop` (the control loop), `camera`, `arms` (arm models), `scene` (tabletop
scenes) and `perception`. Imports nothing else of skillstack.
"""
