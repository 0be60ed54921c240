"""What evaluating a launch file produces: the processes to run and the declared arguments."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

__all__ = ['DeclaredArg', 'LaunchPlan', 'ProcessSpec']


@dataclass
class ProcessSpec:
    """One process to supervise, fully resolved."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: str | None = None
    output: str = 'log'
    respawn: bool = False
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1
    required: bool = False
    shell: bool = False
    sigterm_timeout: float = 5.0
    sigkill_timeout: float = 5.0
    node_name: str | None = None

    def command_line(self) -> str:
        """Return the command as one shell-quoted line."""
        return self.cmd[0] if self.shell else shlex.join(self.cmd)


@dataclass
class DeclaredArg:
    """An `arg` of a launch file, for `--show-args`."""

    name: str
    description: str
    default: str | None
    choices: list[str] | None
    file: str


@dataclass
class LaunchPlan:
    """Everything a launch file asked for, in launch order."""

    processes: list[ProcessSpec] = field(default_factory=list)
    args: list[DeclaredArg] = field(default_factory=list)
    param_files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
