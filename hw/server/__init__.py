"""The robot server (next to the hardware) and its network clients.

skillstack serve --robot mujoco                       # terminal 1
skillstack run "put the cube in the bowl" --robot tcp://127.0.0.1:5555   # terminal 2
"""
