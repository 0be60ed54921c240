"""Fleet demo benchmark: fresh clone -> running fleet, and the demo's real-time factor and memory.

The targets of the bringup issue: from a fresh clone, `make demo` reaches a running fleet in
<= 5 minutes on 2 cores, setup included; the 2-robot demo runs at a simulation real-time factor
>= 0.9 with all its processes together under 4 GiB.

What it does: clones this repository's HEAD (committed work only) into a new folder, runs
`make demo DURATION=<seconds>` there with empty download and compile caches (uv's cache and the
NPU bridge's compiled-model cache point into the folder; --warm-caches keeps your own), timestamps
every line of output (shown as it comes), and reads the demo's summary.json. Debian packages must
already be installed (setup installs them as root; their time is not part of this figure).

Run:  python bench/demo.py [--seconds 60] [--keep] [--warm-caches]
Writes bench/results/demo.json and prints the figures.

Robot counts (the 4-robot issue's figures): `python bench/demo.py --robots 1,2,3,4 [--seconds 60]
[--design-rates] [--layout one_process|processes]` runs the demo of this workspace (no clone;
`. ./env.sh` first) once per count and reports, for each, the time from the launch to the
fleet being up (every robot online with all its nodes), the real-time factor, peak memory,
tasks and collisions. Target: fleet up within 120 s for 4
robots on 2 cores. Writes bench/results/demo_robots.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'demo.json'
TARGET_STARTUP_S = 300.0
TARGET_RTF = 0.9
TARGET_MEMORY_MIB = 4096.0
RESULTS_ROBOTS = ROOT / 'bench' / 'results' / 'demo_robots.json'
TARGET_FLEET_UP_4_S = 120.0
FLEET_UP = re.compile(r'\[demo\] fleet is up \((\d+) robots, (\d+) s after the launch\)')
MARKS = {
    'python_packages_s': re.compile(r'^fix_rosidl_exports:'),
    'setup_s': re.compile(r'^\[setup\] env\.sh written'),
    'fleet_up_s': re.compile(r'^\[demo\] fleet is up'),
}


def run_demo(workdir: Path, seconds: float, warm: bool) -> tuple[dict[str, float], Path]:
    """Clone, run `make demo`, return (seconds from the start to each mark, run directory)."""
    clone = workdir / 'kpai'
    # a fresh shell: nothing of this checkout's env.sh (bench.sh sources it), nor the marker
    # with which this venv's ROS wheels tell child interpreters that LD_LIBRARY_PATH is set
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('AMENT_', 'CMAKE_', 'COLCON_', 'KPAI_', 'ROS_', 'RMW_',
                                'FASTDDS_', '_ROS_WHEELS_'))
           and k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'LD_LIBRARY_PATH', 'MUJOCO_GL')}
    env['PATH'] = os.pathsep.join(p for p in env.get('PATH', '').split(os.pathsep)
                                  if p and not p.startswith(str(ROOT)))
    env['CI'] = 'true'
    if not warm:
        env['UV_CACHE_DIR'] = str(workdir / 'uv-cache')
        env['KPAI_NPU_CACHE'] = str(workdir / 'npu-cache')
        env['PIP_NO_CACHE_DIR'] = '1'
    start = time.monotonic()
    subprocess.run(['git', 'clone', '-q', str(ROOT), str(clone)], check=True)
    marks: dict[str, float] = {'clone_s': time.monotonic() - start}
    run_dir: Path | None = None
    proc = subprocess.Popen(['make', 'demo', f'DURATION={seconds:g}'], cwd=clone, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - start
        line = line.rstrip()
        print(f'{now:7.1f}  {line}', flush=True)
        for key, pattern in MARKS.items():
            if key not in marks and pattern.search(line):
                marks[key] = now
        found = re.search(r'run directory: (\S+)', line)
        if found:
            run_dir = Path(found.group(1))
    if proc.wait() != 0:
        raise SystemExit(f'make demo failed (exit {proc.returncode})')
    marks['total_s'] = time.monotonic() - start
    missing = [k for k in MARKS if k not in marks]
    if missing or run_dir is None:
        raise SystemExit(f'the demo output lacked {missing or "its run directory"}')
    return marks, run_dir


def run_count(robots: int, seconds: float, workdir: Path, rates: list[str]) -> dict[str, Any]:
    """Run this workspace's demo with robots robots; return its start-up and run figures."""
    run_dir = workdir / f'robots-{robots}'
    cmd = [sys.executable, '-m', 'kpai_bringup.demo', '--robots', str(robots), '--duration',
           f'{seconds:g}', '--no-record', '--run-dir', str(run_dir), *rates]
    print(f'[bench] {robots} robot(s): {" ".join(cmd[1:])}', flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    fleet_up: float | None = None
    for line in proc.stdout:
        line = line.rstrip()
        print(f'{time.monotonic() - start:7.1f}  {line}', flush=True)
        found = FLEET_UP.search(line)
        if found:
            fleet_up = float(found.group(2))
    code = proc.wait()
    summary_file = run_dir / 'summary.json'
    summary: dict[str, Any] = (json.loads(summary_file.read_text())
                               if summary_file.exists() else {})
    return {
        'robots': robots, 'exit_code': code, 'fleet_up_s': fleet_up,
        'real_time_factor': summary.get('real_time_factor'),
        'peak_memory_mib': summary.get('peak_memory_mib'),
        'tasks_completed': summary.get('tasks_completed'),
        'tasks_per_robot': {n: r['tasks_completed']
                            for n, r in summary.get('robots', {}).items()},
        'collisions': summary.get('collisions'),
        'rates_hz': {k: summary.get(f'{k}_rate_hz') for k in ('camera', 'odom', 'clock')},
        'demo_seconds': seconds,
    }


def main_counts(counts: list[int], seconds: float, rates: list[str]) -> int:
    """Run the demo for each robot count; write and print the figures."""
    workdir = Path(tempfile.mkdtemp(prefix='kpai-bench-robots-'))
    try:
        runs = [run_count(n, seconds, workdir, rates) for n in counts]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    four = next((r for r in runs if r['robots'] == 4), None)
    result = {
        'commit': subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        'cores': os.cpu_count(),
        'command': 'python bench/demo.py ' + ' '.join(sys.argv[1:]),
        'runs': runs,
        'targets': {'fleet_up_s_4_robots': TARGET_FLEET_UP_4_S},
        'met': {'fleet_up_s_4_robots': bool(four and four['fleet_up_s'] is not None
                                            and four['fleet_up_s'] <= TARGET_FLEET_UP_4_S)},
    }
    RESULTS_ROBOTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_ROBOTS.write_text(json.dumps(result, indent=2) + '\n')
    print('\nrobots  fleet up (s)  real-time factor  peak memory (MiB)  tasks  collisions  exit')
    for r in runs:
        print(f'{r["robots"]:6d}  {r["fleet_up_s"]!s:>12}  {r["real_time_factor"]!s:>16}  '
              f'{r["peak_memory_mib"]!s:>17}  {r["tasks_completed"]!s:>5}  '
              f'{r["collisions"]!s:>10}  {r["exit_code"]:4d}')
    print(f'written to {RESULTS_ROBOTS.relative_to(ROOT)}')
    return 0 if all(r['exit_code'] == 0 for r in runs) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0,
                        help='demo duration once the fleet is up (default 60)')
    parser.add_argument('--keep', action='store_true', help='keep the clone (path printed)')
    parser.add_argument('--warm-caches', action='store_true',
                        help='use your uv and NPU caches (default: empty ones, as on a new '
                             'machine)')
    parser.add_argument('--robots', default='',
                        help='comma-separated robot counts (e.g. 1,2,3,4): run this '
                             "workspace's demo once per count instead of a fresh clone")
    parser.add_argument('--design-rates', action='store_true',
                        help='with --robots: run every count at the design rates (camera 10, '
                             'odometry 20, clock 25 Hz) instead of the rates the demo chooses '
                             'for the machine')
    parser.add_argument('--layout', choices=['one_process', 'processes'], default=None,
                        help="with --robots: the robots' process layout (default: the demo's)")
    args = parser.parse_args()
    if args.seconds < 10:
        parser.error('--seconds must be >= 10')
    if args.robots:
        try:
            counts = [int(c) for c in args.robots.split(',')]
        except ValueError:
            parser.error(f'--robots must be comma-separated integers, got {args.robots!r}')
        if not counts or any(not 1 <= c <= 4 for c in counts):
            parser.error('--robots: counts must be in 1..4')
        rates = (['--camera-rate', '10', '--odom-rate', '20', '--clock-rate', '25']
                 if args.design_rates else [])
        layout = ['--layout', args.layout] if args.layout else []
        return main_counts(counts, args.seconds, rates + layout)
    if subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                      capture_output=True, text=True, check=True).stdout.strip():
        print('note: uncommitted changes are not part of the clone', file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix='kpai-bench-demo-'))
    try:
        marks, run_dir = run_demo(workdir, args.seconds, args.warm_caches)
        summary: dict[str, Any] = json.loads((run_dir / 'summary.json').read_text())
    finally:
        if args.keep:
            print(f'clone kept in {workdir}')
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    robots = summary['robots']
    result = {
        'commit': subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        'cores': os.cpu_count(),
        'caches': 'warm' if args.warm_caches else 'empty',
        'clone_s': round(marks['clone_s'], 1),
        'python_packages_s': round(marks['python_packages_s'], 1),
        'setup_s': round(marks['setup_s'], 1),
        'fleet_up_s': round(marks['fleet_up_s'], 1),
        'fleet_startup_s': round(marks['fleet_up_s'] - marks['setup_s'], 1),
        'total_s': round(marks['total_s'], 1),
        'demo_seconds': args.seconds,
        'real_time_factor': summary['real_time_factor'],
        'peak_memory_mib': summary['peak_memory_mib'],
        'tasks_completed': summary['tasks_completed'],
        'tasks_failed': summary['tasks_failed'],
        'tasks_per_robot': {name: r['tasks_completed'] for name, r in robots.items()},
        'collisions': summary['collisions'],
        'rates_hz': {k: summary[f'{k}_rate_hz'] for k in ('camera', 'odom', 'clock')},
        'targets': {'fleet_up_s': TARGET_STARTUP_S, 'real_time_factor': TARGET_RTF,
                    'peak_memory_mib': TARGET_MEMORY_MIB},
    }
    result['met'] = {
        'fleet_up_s': result['fleet_up_s'] <= TARGET_STARTUP_S,
        'real_time_factor': result['real_time_factor'] >= TARGET_RTF,
        'peak_memory_mib': result['peak_memory_mib'] < TARGET_MEMORY_MIB,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + '\n')
    print(f'\nfresh clone -> fleet up: {result["fleet_up_s"]} s (target <= {TARGET_STARTUP_S:g}; '
          f'Python packages done at {result["python_packages_s"]} s, setup done at '
          f'{result["setup_s"]} s, fleet start {result["fleet_startup_s"]} s; '
          f'{result["caches"]} caches)')
    print(f'real-time factor {result["real_time_factor"]} (target >= {TARGET_RTF}), peak memory '
          f'{result["peak_memory_mib"]} MiB (target < {TARGET_MEMORY_MIB:g}), tasks '
          f'{result["tasks_per_robot"]}, failed {result["tasks_failed"]}, collisions '
          f'{result["collisions"]}')
    print(f'written to {RESULTS.relative_to(ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
