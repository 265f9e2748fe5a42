"""Conventions every arm model follows, shared with the scene builder and the skills."""

# Collision bit masks: the arm collides with the scene (table and objects) but not with
# itself (adjacent links overlap in the meshes).
COLLIDE_SCENE = 1
COLLIDE_ROBOT = 2
