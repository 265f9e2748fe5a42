"""Planners: from an instruction and the world state to a sequence of skill calls.

`symbolic` (offline grammar and search) and `llm` (a language model) propose plans,
`validator` checks them before anything moves, `executive` runs them and replans on
failure, `tasks` and the benchmarks measure them, and `cli` is the command line.
"""
