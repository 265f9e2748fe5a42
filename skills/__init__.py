"""Parameterized skills and what they run on.

`base` (the `Skill` interface and typed failures), `program` and `guards` (control-rate
primitives and what they watch), `executor` (check, plan, run, verify), `world` and the
world models (`world_model`, `declared`, `perceive`), `library` (the scripted skills),
`registry`, benchmarks (`bench`, `parity`) and `training` (learned skills).
"""
