"""Guards every test shares."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _scheduling_unchanged():
    """A test must not leave the test process at another scheduling policy.

    libfranka's ``Robot`` puts the calling thread at SCHED_FIFO 99 when it may (root, as CI
    runs). Every thread and process started afterwards inherited it, and two CPU-hog
    processes of a later benchmark then took both cores for good: CI hung for an hour.
    """
    if not hasattr(os, "sched_getscheduler"):  # not Linux
        yield
        return
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    yield
    after = os.sched_getscheduler(0), os.sched_getparam(0)
    if after != before:
        os.sched_setscheduler(0, *before)  # so the tests after it are not starved
        pytest.fail(
            f"the test left the process at scheduling policy {after[0]} "
            f"(priority {after[1].sched_priority}); it was {before[0]}",
            pytrace=False,
        )
