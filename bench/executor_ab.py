"""The stack's executor against rclpy's, in one run (issue 18): per-robot CPU at the demo.

Runs bench/stack_cpu.py (the 2-robot demo, /proc CPU over a window) alternately with
`--executor rclpy` (rclpy's SingleThreadedExecutor and its default QoS event handlers: the
baseline) and `--executor lean` (the stack's default: LeanExecutor and QosWatch), --rounds
times each, baseline first in every round. Reports per round and the medians: per-robot CPU
seconds per simulated second, the robot node kinds, the simulator, the real-time factor, and
the ratio lean / rclpy of the per-robot medians.

Run:  python bench/executor_ab.py [--rounds 2] [--window 20] [--design-rates]
Writes bench/results/executor_ab.json and prints a table.
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
RESULTS = ROOT / 'bench' / 'results' / 'executor_ab.json'
DESIGN = ['--demo-arg=--camera-rate=10', '--demo-arg=--odom-rate=20',
          '--demo-arg=--clock-rate=25']
VARIANTS = ('rclpy', 'lean')


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
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--window', type=float, default=20.0)
    p.add_argument('--robots', type=int, default=2)
    p.add_argument('--design-rates', action='store_true',
                   help='camera 10 Hz, odometry 20 Hz, clock 25 Hz (default: what the demo '
                        'chooses for the machine)')
    p.add_argument('--out', type=Path, default=RESULTS)
    args = p.parse_args()
    if args.rounds < 1:
        p.error('--rounds must be >= 1')
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix='kpai-bench-executor-') as tmp:
        for i in range(args.rounds):
            for variant in VARIANTS:
                out = Path(tmp) / f'{variant}-{i}.json'
                cmd = [sys.executable, str(ROOT / 'bench' / 'stack_cpu.py'), '--executor', variant,
                       '--window', str(args.window), '--robots', str(args.robots),
                       '--census-seconds', '0', '--out', str(out),
                       *(DESIGN if args.design_rates else [])]
                print(f'[bench] round {i + 1}/{args.rounds}: {variant}', flush=True)
                done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if done.returncode != 0 or not out.exists():
                    print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f'stack_cpu.py --executor {variant} failed '
                                     f'(exit {done.returncode})')
                runs[variant].append(summarize(json.loads(out.read_text())))
                r = runs[variant][-1]
                print(f'[bench]   per robot {r["per_robot"]:.3f} CPU s/sim s, sim {r["sim"]}, '
                      f'real-time factor {r["real_time_factor"]}', flush=True)
    med = {v: medians(runs[v]) for v in VARIANTS}
    ratio = round(med['lean']['per_robot'] / med['rclpy']['per_robot'], 3)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    result = {
        'commit': commit,
        'command': 'python bench/executor_ab.py ' + ' '.join(sys.argv[1:]),
        'robots': args.robots,
        'rounds': runs,
        'medians': med,
        'per_robot_ratio_lean_over_rclpy': ratio,
        'notes': 'CPU seconds per simulated second (bench/stack_cpu.py); rclpy = rclpy '
                 'SingleThreadedExecutor with its default QoS event handlers, lean = '
                 'LeanExecutor + QosWatch (the stack default); variants alternate, rclpy first.',
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + '\n')
    print(f'\n{"":18s}{"rclpy":>10s}{"lean":>10s}')
    for key in ('per_robot', 'sim', 'total', 'real_time_factor'):
        print(f'{key:18s}{med["rclpy"][key]:>10}{med["lean"][key]:>10}')
    for k in med['rclpy']['node_kinds']:
        print(f'  {k:16s}{med["rclpy"]["node_kinds"][k]:>10}'
              f'{med["lean"]["node_kinds"].get(k, 0.0):>10}')
    print(f'per robot, lean / rclpy: {ratio}')
    print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
