"""The conformance report: what ran, each check's result, the verdict; Markdown and JSON."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .verdict import CHECKS, EXIT_CODES, CheckResult, Status, Verdict, decide

__all__ = ['ConformanceReport', 'render_markdown', 'report_basename', 'write_report']


@dataclass
class ConformanceReport:
    """Everything a conformance run found about one vehicle."""

    manufacturer: str
    serial: str
    broker: str
    interface: str = 'uagv'
    major: str = 'v2'
    results: list[CheckResult] = field(default_factory=list)
    vehicle: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0

    def add(self, result: CheckResult) -> CheckResult:
        """Record a result, replacing an earlier one of the same check."""
        self.results = [r for r in self.results if r.name != result.name] + [result]
        return result

    def result(self, name: str) -> CheckResult | None:
        """Return the result of check name, if it ran."""
        return next((r for r in self.results if r.name == name), None)

    @property
    def verdict(self) -> Verdict:
        return decide(self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def ordered(self) -> list[CheckResult]:
        """Return the results in catalogue order."""
        order = list(CHECKS)
        return sorted(self.results, key=lambda r: order.index(r.name) if r.name in order
                      else len(order))

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            'verdict': self.verdict.value, 'exit_code': self.exit_code,
            'manufacturer': self.manufacturer, 'serialNumber': self.serial,
            'topic_prefix': f'{self.interface}/{self.major}/{self.manufacturer}/{self.serial}',
            'broker': self.broker, 'vehicle': self.vehicle, 'options': self.options,
            'started': _iso(self.started), 'duration_s': round(self.duration_s, 3),
            'checks': [r.as_dict() for r in self.ordered()],
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def report_basename(manufacturer: str, serial: str, started: float) -> str:
    """Return conformance-<manufacturer>-<serial>-<UTC date and time>, safe as a file name."""
    def safe(text: str) -> str:
        return re.sub(r'[^A-Za-z0-9._-]+', '_', text)[:64] or '_'
    stamp = datetime.fromtimestamp(started, tz=timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    return f'conformance-{safe(manufacturer)}-{safe(serial)}-{stamp}'


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


_MARK = {Status.PASS: 'pass', Status.FAIL: '**FAIL**', Status.SKIP: 'skip'}


def render_markdown(report: ConformanceReport) -> str:
    """Return the human-readable report."""
    verdict = report.verdict
    v = report.vehicle
    lines = [
        f'# VDA 5050 conformance: {report.manufacturer}/{report.serial} — '
        f'{verdict.value.upper()}',
        '',
        f'- topics: `{report.interface}/{report.major}/{report.manufacturer}/{report.serial}/…`'
        f' on `{report.broker}`',
        f'- started {_iso(report.started)}, {report.duration_s:.1f} s',
    ]
    if v:
        lines.append(f'- vehicle: protocol {v.get("version", "?")}, series '
                     f'{v.get("series", "?")}, {v.get("actions", 0)} declared actions')
    lines += ['', f'Verdict **{verdict.value}** (exit code {report.exit_code}): pass needs every '
              'check to pass; a skip is accepted only where the check documents it (e.g. the '
              'last will, which cannot be forced remotely); anything else left unchecked makes '
              'the run incomplete.', '', '## Checks', '', '| check | result | reason |',
              '|---|---|---|']
    for r in report.ordered():
        mark = _MARK[r.status] + (' (accepted)' if r.skip_allowed else '')
        lines.append(f'| {r.name} | {mark} | {_cell(r.reason)} |')
    lines += ['', '## What each check verifies', '']
    lines += [f'- **{c.name}**: {c.title}' for c in CHECKS.values()]
    val = report.result('message_validation')
    if val is not None and val.details.get('listed'):
        lines += ['', '## Invalid messages (first of each kind)', '']
        lines += [f'- {_cell(x)}' for x in val.details['listed']]
    hdr = report.result('header_ids')
    if hdr is not None and hdr.details.get('listed'):
        lines += ['', '## headerId problems', '']
        lines += [f'- {_cell(x)}' for x in hdr.details['listed']]
    lines += ['', '## Options', '', '```json', json.dumps(report.options, indent=2,
                                                          sort_keys=True), '```', '']
    return '\n'.join(lines)


def write_report(report: ConformanceReport, directory: Path) -> dict[str, Path]:
    """Write <basename>.md and <basename>.json into directory; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    base = report_basename(report.manufacturer, report.serial, report.started)
    paths = {'markdown': directory / f'{base}.md', 'json': directory / f'{base}.json'}
    paths['markdown'].write_text(render_markdown(report), encoding='utf-8')
    paths['json'].write_text(json.dumps(report.as_dict(), indent=2, default=str) + '\n',
                             encoding='utf-8')
    return paths
