"""Two ways to run the robot stack against each other, in one run (issue 18): per-robot CPU.

Runs bench/stack_cpu.py (the 2-robot demo, /proc CPU over a window) alternately for the two
variants of --compare, --rounds times each, baseline first in every round:
- `executor` (default): `--executor rclpy` (rclpy's SingleThreadedExecutor and its default QoS
  event handlers: the baseline) against `--executor lean` (the stack's: LeanExecutor and
  QosWatch);
- `layout`: one process per node (the baseline) against each robot's nodes but the NPU bridge
  in one process (the demo's --layout one_process, robot.launch.yaml one_process:=true).
Reports per round and the medians: per-robot CPU seconds per simulated second, the robot node
kinds (or processes), the simulator, the real-time factor, and the ratio of the per-robot
medians, second variant over baseline.

Run:  python bench/executor_ab.py [--compare executor|layout] [--rounds 2] [--window 20]
          [--design-rates]
Writes bench/results/executor_ab.json (or layout_ab.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results'
DESIGN = ['--demo-arg=--camera-rate=10', '--demo-arg=--odom-rate=20',
          '--demo-arg=--clock-rate=25']
# --compare -> (baseline, other): variant name and its stack_cpu.py arguments
COMPARISONS: dict[str, tuple[tuple[str, list[str]], tuple[str, list[str]]]] = {
    # one process per node, as when executor_ab.json was measured (before the demo's layout)
    'executor': (('rclpy', ['--executor', 'rclpy', '--demo-arg=--layout=processes']),
                 ('lean', ['--executor', 'lean', '--demo-arg=--layout=processes'])),
    'layout': (('processes', ['--demo-arg=--layout=processes']),
               ('one_process', ['--demo-arg=--layout=one_process'])),
}
NOTES = {
    'executor': 'rclpy = rclpy SingleThreadedExecutor with its default QoS event handlers, '
                'lean = LeanExecutor + QosWatch (the stack default)',
    'layout': "processes = one process per node; one_process = each robot's nodes but the "
              'NPU bridge in one process (kpai_bringup robot_stack, LeanExecutor)',
}


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one stack_cpu.py result that the comparison needs."""
    robots = [v['cpu_s_per_sim_s'] for v in run['per_robot'].values()]
    others = {n['node']: n['cpu_s_per_sim_s'] for n in run['nodes'] if not n['robot']}
    return {
        'per_robot': round(statistics.fmean(robots), 3) if robots else None,
        'node_kinds': {k: v['cpu_s_per_sim_s_mean'] for k, v in run['by_kind'].items()},
        'sim': others.get('sim'),
        'total': run['totals']['cpu_s_per_sim_s'],
        'real_time_factor': run['real_time_factor'],
        'rates_hz': run.get('rates_hz', {}),
    }


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the rounds of one variant."""
    kinds = sorted({k for r in rounds for k in r['node_kinds']})
    return {
        'per_robot': round(statistics.median(r['per_robot'] for r in rounds), 3),
        'sim': round(statistics.median(r['sim'] for r in rounds if r['sim'] is not None), 3),
        'total': round(statistics.median(r['total'] for r in rounds), 3),
        'real_time_factor': round(statistics.median(r['real_time_factor'] for r in rounds), 2),
        'node_kinds': {k: round(statistics.median(r['node_kinds'].get(k, 0.0) for r in rounds), 4)
                       for k in kinds},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--compare', choices=sorted(COMPARISONS), default='executor')
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--window', type=float, default=20.0)
    p.add_argument('--robots', type=int, default=2)
    p.add_argument('--design-rates', action='store_true',
                   help='camera 10 Hz, odometry 20 Hz, clock 25 Hz (default: what the demo '
                        'chooses for the machine)')
    p.add_argument('--out', type=Path, default=None,
                   help='JSON file (default bench/results/<compare>_ab.json)')
    args = p.parse_args()
    if args.rounds < 1:
        p.error('--rounds must be >= 1')
    variants = dict(COMPARISONS[args.compare])
    base, other = variants
    out_file = args.out or RESULTS / f'{args.compare}_ab.json'
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix='kpai-bench-ab-') as tmp:
        for i in range(args.rounds):
            for variant, extra in variants.items():
                out = Path(tmp) / f'{variant}-{i}.json'
                cmd = [sys.executable, str(ROOT / 'bench' / 'stack_cpu.py'), *extra,
                       '--window', str(args.window), '--robots', str(args.robots),
                       '--census-seconds', '0', '--out', str(out),
                       *(DESIGN if args.design_rates else [])]
                print(f'[bench] round {i + 1}/{args.rounds}: {variant}', flush=True)
                done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if done.returncode != 0 or not out.exists():
                    print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f'stack_cpu.py {" ".join(extra)} failed '
                                     f'(exit {done.returncode})')
                runs[variant].append(summarize(json.loads(out.read_text())))
                r = runs[variant][-1]
                print(f'[bench]   per robot {r["per_robot"]:.3f} CPU s/sim s, sim {r["sim"]}, '
                      f'real-time factor {r["real_time_factor"]}', flush=True)
    med = {v: medians(runs[v]) for v in variants}
    ratio = round(med[other]['per_robot'] / med[base]['per_robot'], 3)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    result = {
        'commit': commit,
        'command': 'python bench/executor_ab.py ' + ' '.join(sys.argv[1:]),
        'robots': args.robots,
        'compare': args.compare,
        'rounds': runs,
        'medians': med,
        f'per_robot_ratio_{other}_over_{base}': ratio,
        'notes': f'CPU seconds per simulated second (bench/stack_cpu.py); {NOTES[args.compare]}; '
                 f'variants alternate, {base} first.',
    }
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + '\n')
    print(f'\n{"":18s}{base:>12s}{other:>12s}')
    for key in ('per_robot', 'sim', 'total', 'real_time_factor'):
        print(f'{key:18s}{med[base][key]:>12}{med[other][key]:>12}')
    for k in sorted({*med[base]['node_kinds'], *med[other]['node_kinds']}):
        print(f'  {k:16s}{med[base]["node_kinds"].get(k, 0.0):>12}'
              f'{med[other]["node_kinds"].get(k, 0.0):>12}')
    print(f'per robot, {other} / {base}: {ratio}')
    print(f'written to {out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
