"""Worker processes that run skills the way this process does (``--skill-impl`` included).

Kept apart from `skills.training.learned` so that benchmarks without learned skills never
import torch: importing it costs seconds, and a process that forks after loading it can
deadlock in torch's thread pools.
"""

from __future__ import annotations

from skillstack.skills.parallel import WorkerSetup


def worker_setup(specs: list[str] | None, spawn: bool = False) -> WorkerSetup:
    """The `WorkerSetup` of workers that use the ``--skill-impl`` ``specs`` too (validated
    here, before any work starts), for `skills.parallel.ordered_map`.

    Local workers are spawned rather than forked when a policy is loaded, or when ``spawn``
    is asked for (a forked child that renders inherits the parent's OpenGL state and can hang).
    """
    if not specs:
        return WorkerSetup(spawn=spawn)
    from skillstack.skills.training.learned import apply_skill_impls, resolve_skill_impls

    resolve_skill_impls(specs)  # a bad spec or checkpoint fails before any work
    return WorkerSetup(apply_skill_impls, (list(specs),), spawn=True)
