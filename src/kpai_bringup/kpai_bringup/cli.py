"""`kpai` command: `kpai launch` runs YAML launch files, `kpai doctor` checks the environment.

    kpai launch <package> <file> [name:=value ...]
    kpai launch <path> [name:=value ...]
    kpai launch ... --show-args     list the arguments (as `ros2 launch -s`)
    kpai launch ... --print         print the commands instead of running them

Exit codes: 0 ok, 1 a required process failed or a package/executable is missing,
2 usage error or malformed launch file (the message names file:line).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from kpai_bringup.launch import (
    LaunchError,
    LaunchFileError,
    LaunchPlan,
    Supervisor,
    evaluate_launch_file,
)
from kpai_bringup.launch.packages import find_launch_file
from kpai_bringup.middleware import apply_middleware_defaults

__all__ = ['main']


class UsageError(Exception):
    """Bad command line."""


def _launch_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='kpai launch', description='Run a ROS 2 YAML launch file (as `ros2 launch`).')
    parser.add_argument('target', nargs='+', metavar='ARG',
                        help='<package> <file> or <path>, then name:=value arguments')
    parser.add_argument('-s', '--show-args', '--show-arguments', action='store_true',
                        help='show the launch file arguments and exit')
    parser.add_argument('--max-starting', type=int, default=0, metavar='K',
                        help='staged start-up: start the next process only while fewer than K '
                        'are still busy starting (their CPU use not yet settled; 0, the '
                        'default, starts all at once as ros2 launch does)')
    parser.add_argument('-p', '--print', '--print-description', dest='print_only',
                        action='store_true', help='print the commands and exit')
    return parser


def _split_target(words: list[str]) -> tuple[Path, dict[str, str]]:
    """Return the launch file and the name:=value arguments of the command line."""
    first, rest = words[0], words[1:]
    if Path(first).is_file():
        path = Path(first)
    elif first.endswith(('.yaml', '.yml')) or '/' in first:
        raise UsageError(f"launch file '{first}' not found")
    else:
        if not rest or ':=' in rest[0]:
            raise UsageError(f"'{first}' is not a file: expected <package> <file>")
        path = find_launch_file(first, rest[0])
        rest = rest[1:]
    if path.suffix not in ('.yaml', '.yml'):
        raise UsageError(f"'{path}': kpai launch reads YAML launch files (*.launch.yaml) only")
    arguments = {}
    for word in rest:
        name, sep, value = word.partition(':=')
        if not sep or not name:
            raise UsageError(f"argument '{word}' is not of the form name:=value")
        arguments[name] = value
    return path, arguments


def _show_args(path: Path, arguments: dict[str, str]) -> None:
    plan = evaluate_launch_file(path, arguments, describe=True)
    if not plan.args:
        print('No arguments.')
        return
    print("Arguments (pass arguments as '<name>:=<value>'):")
    seen = set()
    for arg in plan.args:
        if arg.name in seen:
            continue
        seen.add(arg.name)
        print(f"\n    '{arg.name}':")
        description = arg.description or 'no description given'
        if arg.choices:
            description += f' Valid choices are: {arg.choices}'
        print(f'        {description}')
        if arg.default is not None:
            print(f"        (default: '{arg.default}')")


def _print_plan(plan: LaunchPlan) -> None:
    for spec in plan.processes:
        flags = [f'output={spec.output}']
        if spec.respawn:
            flags.append(f'respawn (delay {spec.respawn_delay} s)')
        if spec.required:
            flags.append('required (on_exit: shutdown)')
        print(f"[{spec.name}] ({', '.join(flags)})")
        changed = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
        for key in sorted(changed):
            print(f'    env {key}={changed[key]}')
        if spec.cwd:
            print(f'    cwd {spec.cwd}')
        print(f'    {spec.command_line()}')
    for path, text in plan.param_files.items():
        print(f'# {path}')
        print(text.rstrip())


def launch_main(argv: list[str]) -> int:
    """Run `kpai launch`."""
    args = _launch_parser().parse_intermixed_args(argv)
    param_dir = tempfile.mkdtemp(prefix='kpai_launch_params_')
    keep_params = False
    try:
        path, arguments = _split_target(args.target)
        if args.show_args:
            _show_args(path, arguments)
            return 0
        env = dict(os.environ)
        apply_middleware_defaults(env)
        plan = evaluate_launch_file(path, arguments, env=env, param_dir=param_dir)
        for warning in plan.warnings:
            print(f'[WARNING] [launch]: {warning}', file=sys.stderr)
        if args.print_only:
            keep_params = True
            _print_plan(plan)
            return 0
        return Supervisor(plan.processes, max_starting=args.max_starting).run()
    except UsageError as err:
        print(f'kpai launch: error: {err}', file=sys.stderr)
        return 2
    except LaunchFileError as err:
        print(f'kpai launch: error: {err}', file=sys.stderr)
        return 2
    except LaunchError as err:
        print(f'kpai launch: error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the supervisor took over the signals
        return 130
    finally:
        if not keep_params:
            shutil.rmtree(param_dir, ignore_errors=True)


def doctor_main(argv: list[str]) -> int:
    """Run `kpai doctor` (kpai_bringup.doctor)."""
    try:
        from kpai_bringup.doctor import main as doctor
    except ModuleNotFoundError as err:
        if err.name != 'kpai_bringup.doctor':
            raise
        print('kpai doctor: not available: module kpai_bringup.doctor is missing from this '
              'install', file=sys.stderr)
        return 1
    return int(doctor(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kpai` command."""
    argv = sys.argv[1:] if argv is None else argv
    commands = {'launch': launch_main, 'doctor': doctor_main}
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ('-h', '--help')
              else sys.stdout)
        if argv and argv[0] not in ('-h', '--help'):
            print(f"\nkpai: unknown command '{argv[0]}' (commands: launch, doctor)",
                  file=sys.stderr)
            return 2
        return 0 if argv else 2
    return commands[argv[0]](argv[1:])


if __name__ == '__main__':
    sys.exit(main())
