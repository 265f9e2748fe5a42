"""The PyBullet back end: `robot.PybulletRobot`, its scene builder (`scene`), ground truth
(`truth`) and TinyRenderer cameras and videos (`camera`)."""
