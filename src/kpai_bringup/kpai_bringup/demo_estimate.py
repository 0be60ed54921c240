"""What the demo expects of this machine before it starts: the CPU its fleet needs, and the
real-time factor that follows.

The figures are measured, not guessed: bench/stack_cpu.py on a 2-robot demo at the demo's
default rates (camera 5 Hz, odometry 10 Hz, clock 10 Hz) gave 0.32 CPU-seconds per simulated
second for one robot's nodes, 0.23 for the simulator with two robots (cameras and lidar are
per robot) and 0.10 for what is shared (demo monitor, fleet server, map server, Foxglove
bridge, launcher, broker). Processes do not get all of a machine's cores: the usable share is
taken from the 4-robot demo on 2 cores (python bench/demo.py --robots 1,2,3,4: real-time
factor 0.99 while the sum above asks for 1.84 cores), so the 4-robot figure matches by construction
and the others follow from it. At other rates the demo does not guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ['DEFAULT_RATES', 'Estimate', 'estimate']

ROBOT_CPU = 0.32  # one robot's nodes, CPU s per sim s (bench/results/stack_cpu.json)
SIM_CPU_PER_ROBOT = 0.115  # the simulator's share per robot (0.23 with two robots)
SHARED_CPU = 0.10  # demo monitor, fleet server, map server, foxglove, launcher, broker
USABLE_SHARE = 0.91  # of the cores (4 robots on 2 cores: 0.99 for a demand of 1.84 cores)
DEFAULT_RATES = (5.0, 10.0, 10.0)  # camera, odometry, clock (Hz): where the figures hold


@dataclass(frozen=True)
class Estimate:
    """The demand in cores and the real-time factor expected (None at unmeasured rates)."""

    cores_needed: float
    real_time_factor: float | None

    def message(self, robots: int, cores: int) -> str:
        """One line for the demo to print before it starts."""
        if self.real_time_factor is None:
            return (f'{robots} robot(s) on {cores} core(s): rates differ from the measured '
                    'defaults (camera 5, odometry 10, clock 10 Hz), so no real-time factor '
                    'is estimated; the run measures it')
        head = (f'{robots} robot(s) on {cores} core(s) need about {self.cores_needed:.1f} '
                f'cores: expected real-time factor about {self.real_time_factor:.2f}')
        if self.real_time_factor >= 0.95:
            return head + ' (real time)'
        return (head + '. The simulation runs slower than the wall clock and every node '
                'follows its sim time, so the run is the same, only longer')


def estimate(robots: int, cores: int, rates: tuple[float, float, float]) -> Estimate:
    """Expected demand and real-time factor of a demo with robots robots on cores cores."""
    if robots < 1 or cores < 1:
        raise ValueError(f'robots and cores must be >= 1, got {robots} and {cores}')
    need = SHARED_CPU + robots * (ROBOT_CPU + SIM_CPU_PER_ROBOT)
    if tuple(float(r) for r in rates) != DEFAULT_RATES:
        return Estimate(need, None)
    return Estimate(need, min(1.0, cores * USABLE_SHARE / need))
