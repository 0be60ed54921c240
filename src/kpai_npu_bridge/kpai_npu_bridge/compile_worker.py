"""Run a vendor compiler in its own Python environment: a subprocess with a JSON-lines protocol.

Vendor toolchains pin conflicting dependencies (the FuriosaAI compiler needs torch 2.7.0), so
they live in their own virtual environment and the bridge talks to a worker script there.

Protocol (version 1). The parent writes one JSON object on the worker's stdin and closes it::

    {"protocol": 1, "op": "compile", "model": "/abs/det.onnx", "output": "/abs/dir/model.edf",
     "input_name": "images", "input_shape": [1, 3, 320, 320], "device": "...", "options": {}}

(``op`` may also be ``"versions"``). The worker answers on stdout with JSON lines, any number of
``{"event": "progress", "message": "...", "fraction": 0.5}`` and exactly one final
``{"event": "result", "ok": true, "compiler": "name version", ...}`` or
``{"event": "result", "ok": false, "error": "...", "kind": "..."}``, then exits. Lines that are
not protocol objects (a compiler's own prints) are kept as log, like stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .backends.base import ProgressFn
from .errors import ModelLoadError

__all__ = ['PROTOCOL', 'WorkerError', 'run_worker']

PROTOCOL = 1
_TAIL = 30


class WorkerError(ModelLoadError):
    """A compile worker failed, answered with an error or broke the protocol."""

    def __init__(self, message: str, kind: str = 'worker') -> None:
        super().__init__(message)
        self.kind = kind


def _drain(stream: Any, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line.rstrip('\n'))


def run_worker(command: Sequence[str], request: Mapping[str, Any], *, label: str,
               progress: ProgressFn | None = None, timeout_s: float = 3600.0,
               env: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Send one request to a worker process and return its successful result object.

    Raises WorkerError with the worker's error (and kind), or with the exit code and the last
    lines of its output when it dies without a result or exceeds timeout_s.
    """
    try:
        proc = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=dict(env) if env is not None else None,
            cwd=cwd, start_new_session=True)  # its own group: a timeout ends the whole tree
    except OSError as err:
        raise WorkerError(f'{label}: cannot start the compile worker {command[0]}: {err}',
                          'missing') from err
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    log: deque[str] = deque(maxlen=_TAIL)
    drain = threading.Thread(target=_drain, args=(proc.stderr, log), daemon=True)
    drain.start()
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    result: dict[str, Any] | None = None
    started = time.monotonic()
    try:
        try:
            proc.stdin.write(json.dumps({'protocol': PROTOCOL, **request}) + '\n')
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the worker died at start; its exit code and stderr say why
        for line in proc.stdout:
            message = _parse(line)
            if message is None:
                log.append(line.rstrip('\n'))
            elif message['event'] == 'progress' and progress is not None:
                fraction = message.get('fraction', 0.0)
                progress(f'{label}: {message.get("message", "")}',
                         float(fraction) if isinstance(fraction, (int, float)) else 0.0)
            elif message['event'] == 'result':
                result = message
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill()
            proc.wait()
        drain.join(timeout=5.0)
    tail = '\n'.join(log)
    if timed_out.is_set():
        raise WorkerError(f'{label}: compile worker timed out after {timeout_s:.0f} s; '
                          f'last output:\n{tail}', 'timeout')
    if result is None:
        raise WorkerError(f'{label}: compile worker exited with code {code} after '
                          f'{time.monotonic() - started:.1f} s without a result; last output:\n'
                          f'{tail}', 'crash')
    if not result.get('ok'):
        raise WorkerError(f'{label}: {result.get("error", "compile failed (no reason given)")}',
                          str(result.get('kind', 'compile')))
    return result


def _parse(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith('{'):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get('event') in ('progress', 'result'):
        return message
    return None
