"""What the demo expects of this machine before it starts: the CPU its fleet needs, and the
real-time factor that follows.

The figures are measured, not guessed (2 cores): CPU-seconds per simulated second of one
robot's nodes, of the simulator per robot (cameras and lidar are per robot) and of what is
shared (demo monitor, fleet server, map server, Foxglove bridge, launcher, broker), for each
process layout of the robots' nodes (LAYOUTS) and two sets of rates:
- the design rates, the demo's default (camera 10 Hz, odometry 20 Hz, clock 25 Hz), measured
  with 4 robots, where the machine is loaded as the estimate must judge it (`python
  bench/stack_cpu.py --robots 4 --window 30 --demo-arg=--camera-rate=10
  --demo-arg=--odom-rate=20 --demo-arg=--clock-rate=25 --demo-arg=--layout=<layout>`,
  bench/results/stack_cpu_four_robots.json and stack_cpu_four_robots_processes.json):
  one_process 0.282, 0.137 and 0.155 at a real-time factor of 1.0; processes 0.415, 0.154
  and 0.18 at 0.75. With 2 robots the same nodes take more per robot (0.358 one_process,
  0.495 processes; bench/results/layout_ab.json): a loaded process takes several messages per
  wake-up, an idle one wakes for each, so a 2-robot figure would overstate the demand of 4;
- the light rates (camera 5, odometry 10, clock 10 Hz), measured with 2 robots (`python
  bench/stack_cpu.py --window 20 --census-seconds 10 --demo-arg=--camera-rate=5
  --demo-arg=--odom-rate=10 --demo-arg=--clock-rate=10 --demo-arg=--layout=<layout>`;
  bench/results/stack_cpu.json and stack_cpu_light_one_process.json): processes 0.24, 0.103
  and 0.083; one_process 0.243, 0.127 and 0.10.
Processes do not get all of a machine's cores: the usable share, 0.92, is what the 4-robot
processes run got (real-time factor 0.75 for a demand of 2.45 cores), so that figure matches
by construction; the one_process run (demand 1.83 cores, real time) agrees with it. At other
rates the demo does not guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ['DEFAULT_RATES', 'LAYOUTS', 'LIGHT_RATES', 'MIN_DESIGN_FACTOR', 'Estimate',
           'choose_rates', 'estimate']

DEFAULT_RATES = (10.0, 20.0, 25.0)  # camera, odometry, clock (Hz): the stack's design rates
LIGHT_RATES = (5.0, 10.0, 10.0)
# how a robot's nodes run: one process each, or all but the NPU bridge in one (the demo default)
LAYOUTS = ('one_process', 'processes')
# (layout, rates) -> (one robot's nodes, the simulator per robot, shared), CPU s per sim s
FIGURES = {
    ('one_process', DEFAULT_RATES): (0.282, 0.137, 0.155),
    ('one_process', LIGHT_RATES): (0.243, 0.127, 0.10),
    ('processes', DEFAULT_RATES): (0.415, 0.154, 0.18),
    ('processes', LIGHT_RATES): (0.24, 0.103, 0.083),
}
USABLE_SHARE = 0.92  # of the cores (4 robots, processes, design rates, 2 cores: 0.75 for 2.45)
# below this expected real-time factor the demo runs the light rates unless rates are given:
# an overloaded machine delays every node's view of the world (issue 18's target is 0.9)
MIN_DESIGN_FACTOR = 0.9


@dataclass(frozen=True)
class Estimate:
    """The demand in cores and the real-time factor expected (None at unmeasured rates)."""

    cores_needed: float
    real_time_factor: float | None
    rates: tuple[float, float, float] = DEFAULT_RATES
    layout: str = 'one_process'

    def message(self, robots: int, cores: int) -> str:
        """One line for the demo to print before it starts."""
        if self.real_time_factor is None:
            return (f'{robots} robot(s) on {cores} core(s): rates differ from the measured '
                    'ones (camera, odometry, clock 10/20/25 Hz, or 5/10/10 Hz), so no '
                    'real-time factor is estimated; the run measures it')
        head = (f'{robots} robot(s) on {cores} core(s) need about {self.cores_needed:.1f} '
                f'cores: expected real-time factor about {self.real_time_factor:.2f}')
        if self.real_time_factor >= 0.95:
            return head + ' (real time)'
        text = (head + '. The simulation runs slower than the wall clock; every node '
                'follows its sim time, but on a saturated machine each node also sees its '
                'inputs late')
        if self.rates != LIGHT_RATES:
            light = estimate(robots, cores, LIGHT_RATES, self.layout).real_time_factor
            text += (f'; at the light rates (CAMERA_RATE=5 ODOM_RATE=10 CLOCK_RATE=10) about '
                     f'{light:.2f}')
        return text


def estimate(robots: int, cores: int, rates: tuple[float, float, float],
             layout: str = 'one_process') -> Estimate:
    """Expected demand and real-time factor of a demo with robots robots on cores cores, their
    nodes run in layout (LAYOUTS)."""
    if robots < 1 or cores < 1:
        raise ValueError(f'robots and cores must be >= 1, got {robots} and {cores}')
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {", ".join(LAYOUTS)}, got {layout!r}')
    key = (float(rates[0]), float(rates[1]), float(rates[2]))
    figures = FIGURES.get((layout, key))
    if figures is None:
        robot, sim, shared = FIGURES[(layout, DEFAULT_RATES)]
        return Estimate(shared + robots * (robot + sim), None, key, layout)
    robot, sim, shared = figures
    need = shared + robots * (robot + sim)
    return Estimate(need, min(1.0, cores * USABLE_SHARE / need), key, layout)


def choose_rates(robots: int, cores: int, layout: str = 'one_process'
                 ) -> tuple[tuple[float, float, float], str]:
    """The demo's rates when none is given, and why: the design rates where this machine is
    expected to hold them (real-time factor >= MIN_DESIGN_FACTOR), the light rates otherwise."""
    design = estimate(robots, cores, DEFAULT_RATES, layout)
    factor = design.real_time_factor
    assert factor is not None
    if factor >= MIN_DESIGN_FACTOR:
        return DEFAULT_RATES, (f'the design rates: {robots} robot(s) on {cores} core(s) are '
                               f'expected to hold them (real-time factor about {factor:.2f})')
    return LIGHT_RATES, (f'the light rates: at the design rates (camera, odometry, clock '
                         f'10/20/25 Hz) {robots} robot(s) on {cores} core(s) would run at a '
                         f'real-time factor of about {factor:.2f}, below {MIN_DESIGN_FACTOR}; '
                         'give CAMERA_RATE, ODOM_RATE or CLOCK_RATE to choose')
