"""Worker processes that run skills the way this process does (``--skill-impl`` included).

Kept apart from `skills.training.learned` so that benchmarks without learned skills never
import torch: importing it costs seconds, and a process that forks after loading it can
deadlock in torch's thread pools.
"""

from __future__ import annotations

import multiprocessing


def worker_pool_options(specs: list[str] | None, spawn: bool = False) -> dict:
    """Keyword arguments for a `ProcessPoolExecutor` whose workers use the ``--skill-impl``
    ``specs`` too (validated here, before any work starts).

    Workers are spawned rather than forked when a policy is loaded, or when ``spawn`` is
    asked for (a forked child that renders inherits the parent's OpenGL state and can hang).
    """
    options: dict = {}
    if specs:
        from skillstack.skills.training.learned import apply_skill_impls, resolve_skill_impls

        resolve_skill_impls(specs)  # a bad spec or checkpoint fails before any work
        options = {"initializer": apply_skill_impls, "initargs": (specs,)}
    if specs or spawn:
        options["mp_context"] = multiprocessing.get_context("spawn")
    return options
