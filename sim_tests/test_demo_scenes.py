"""Where demonstrations start and what they show: grasps after a place of another block,
and the mixed place scenes (blocks onto blocks and towers, cups onto plates and the table)."""

from __future__ import annotations

import numpy as np
import pytest


def test_after_place_starts_put_another_block_on_the_table_first():
    from skillstack.skills.training.collect import AFTER_PLACE_GAP, demonstration_setup

    scene, setup, params, target = demonstration_setup("grasp", 10, after_place=1.0)
    assert demonstration_setup("grasp", 10, after_place=1.0)[1] == setup  # seeded
    (grasp, held), (place, put) = setup
    assert (grasp, place) == ("grasp", "place") and held["object"] != target == params["object"]
    assert put["object"] == held["object"] and put["target"] == "table"
    mover = scene.object(held["object"])
    for other in scene.objects:
        if other.name != mover.name:
            gap = np.hypot(*np.subtract(put["position"], other.position[:2]))
            assert gap >= other.footprint_radius() + mover.footprint_radius() + AFTER_PLACE_GAP
    assert demonstration_setup("grasp", 10)[1] == []  # off by default
    with pytest.raises(ValueError, match="grasp only"):
        from skillstack.skills.training.collect import collect

        collect("place", 1, 0, "unused", after_place=0.5)


def test_mixed_place_scenes_stack_blocks_and_put_cups_down():
    from skillstack.skills.training.scenes import PLACE_VARIANTS, scene_set_episode, variant

    seen = {}
    for seed in range(40):
        scene, setup, params = scene_set_episode("place", seed, "mixed")
        seen.setdefault(variant(seed, "place"), (scene, setup, params))
    assert set(seen) == set(PLACE_VARIANTS)
    scene, setup, params = seen["stack"]
    assert setup == [("grasp", {"object": "item"})] and params["target"] == "goal"
    assert scene.object("goal").kind == "box" and scene.object("item").kind == "box"
    scene, setup, params = seen["cup"]
    assert scene.object("item").kind == "cup" and params["object"] == "item"
