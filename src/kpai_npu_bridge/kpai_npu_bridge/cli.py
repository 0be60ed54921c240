"""kpai-npu: list backends, certify a backend against the reference, benchmark a model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .backends.registry import available_backends
from .errors import NpuBridgeError

__all__ = ['main']


def _cmd_backends(args: argparse.Namespace) -> int:
    rows = [('name', 'available', 'vendor / device / runtime, or reason')]
    for name, status in sorted(available_backends().items()):
        detail = status.reason
        if status.available and status.cls is not None:
            vendor = getattr(status.cls, 'vendor', '')
            detail = '; '.join(x for x in (vendor, status.reason) if x)
        rows.append((name, 'yes' if status.available else 'NO', detail))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for row in rows:
        print(f'{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of kpai-npu."""
    parser = argparse.ArgumentParser(prog='kpai-npu', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('backends', help='list backends and whether they are usable here')
    p.set_defaults(func=_cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NpuBridgeError as err:
        print(f'kpai-npu: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
