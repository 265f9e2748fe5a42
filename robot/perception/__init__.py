"""Perception: turning camera images into geometry the skills can use.

`robot.perception.calibration` calibrates cameras (intrinsics, hand–eye) and
`robot.perception.calibration_file` saves and loads the resulting calibration file.
"""
