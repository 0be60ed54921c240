"""The simulated robot's planning footprint covers its chassis.

The mission executor checks collisions with a circle of `robot_radius`. Smaller than the
simulated AMR's circumscribed radius, corners reach past the check: with the planning default
0.3 m two robots kept about 0.71 m between centres, where the 0.6 x 0.45 m boxes touch
corner to corner, and collided in 4-robot demos.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from kpai_sim.robot_description import load_robot_spec

ROOT = Path(__file__).resolve().parents[2]


def test_the_sim_robot_radius_covers_the_chassis_of_the_simulated_amr() -> None:
    params = yaml.safe_load((ROOT / 'src/kpai_bringup/config/sim_robot.yaml').read_text())
    radius = params['/**/mission_executor']['ros__parameters']['robot_radius']
    spec = load_robot_spec()
    sx, sy, _ = spec.chassis_size
    assert spec.footprint_radius() >= (sx * sx + sy * sy) ** 0.5 / 2 - 1e-9
    assert radius >= spec.footprint_radius()
    assert radius <= spec.footprint_radius() + 0.05  # not so large that aisles close
