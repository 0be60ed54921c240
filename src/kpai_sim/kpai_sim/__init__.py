"""Embedded MuJoCo factory simulation: robots, sensors, people, clock and ground truth."""

import os

# MuJoCo picks its GL backend when first imported: default to headless EGL (software Mesa
# llvmpipe works) unless the user chose another (osmesa, glfw).
os.environ.setdefault('MUJOCO_GL', 'egl')
