"""Certification report files: report.json, report.md and latency.png."""

from __future__ import annotations

import json
from pathlib import Path

from .certify import CertificationReport

__all__ = ['render_markdown', 'write_report']


def render_markdown(report: CertificationReport) -> str:
    """Return the human-readable report."""
    verdict = report.verdict.upper()
    info = report.candidate_info
    lines = [
        f'# NPU backend certification: {report.backend} — {verdict}',
        '',
        f'- model: `{report.model}` (sha256 `{report.model_sha256}`), task {report.task}',
        f'- candidate: {report.backend} {info.get("runtime_version", "")}, vendor '
        f'{info.get("vendor", "?")}, device {info.get("device", report.device or "default")}',
        f'- reference: {report.reference} {report.reference_info.get("runtime_version", "")}',
        f'- host: {report.host}; duration {report.duration_s:.1f} s',
        '',
        *([f'**Incomplete**: {report.incomplete}. Checks marked "not run" need the device; '
           'run the certification again where it is present.', ''] if report.incomplete else []),
        '## Checks',
        '',
        '| check | result | detail |',
        '|---|---|---|',
    ]
    for check in report.checks:
        detail = check.detail.replace('|', '\\|').replace('\n', ' ')
        result = 'not run' if check.skipped else 'pass' if check.passed else '**FAIL**'
        lines.append(f'| {check.name} | {result} | {detail} |')
    bad = next((c for c in report.checks if c.name == 'bad_inputs'), None)
    if bad is not None and bad.metrics.get('cases'):
        lines += ['', '## Bad inputs', '', '| case | ok | outcome |', '|---|---|---|']
        for case in bad.metrics['cases']:
            outcome = str(case['outcome']).replace('|', '\\|').replace('\n', ' ')[:200]
            lines.append(f'| {case["case"]} | {"yes" if case["ok"] else "**no**"} | {outcome} |')
    if report.latency:
        lines += ['', '## Latency (backend only, ms per call) and throughput', '',
                  '| backend | batch | p50 ms | p95 ms | images/s |', '|---|---|---|---|---|']
        for who, stats in report.latency.items():
            name = report.backend if who == 'candidate' else report.reference
            for s in stats:
                lines.append(f'| {name} | {s.batch_size} | {s.p50_ms:.2f} | {s.p95_ms:.2f} | '
                             f'{s.throughput_fps:.1f} |')
        lines += ['', '![latency](latency.png)']
    lines += ['', '## Tolerances', '', '```json', json.dumps(report.tolerances, indent=2), '```',
              '']
    return '\n'.join(lines)


def _plot(report: CertificationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_tp) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.38
    for k, (who, stats) in enumerate(sorted(report.latency.items())):
        name = report.backend if who == 'candidate' else report.reference
        xs = [i + (k - 0.5) * width for i in range(len(stats))]
        ax_lat.bar(xs, [s.p50_ms for s in stats], width, label=f'{name} p50')
        ax_lat.errorbar(xs, [s.p95_ms for s in stats], fmt='k_', markersize=12,
                        label=f'{name} p95' if k == 0 else None)
        ax_tp.bar(xs, [s.throughput_fps for s in stats], width, label=name)
        labels = [str(s.batch_size) for s in stats]
        for ax in (ax_lat, ax_tp):
            ax.set_xticks(range(len(stats)), labels)
            ax.set_xlabel('batch size')
    ax_lat.set_ylabel('latency per call (ms)')
    ax_tp.set_ylabel('throughput (images/s)')
    ax_lat.legend(fontsize=8)
    ax_tp.legend(fontsize=8)
    fig.suptitle(f'{report.backend} vs {report.reference} — '
                 f'{"PASS" if report.passed else "FAIL"}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: CertificationReport, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and (when latency was measured) latency.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {'json': out_dir / 'report.json', 'markdown': out_dir / 'report.md'}
    paths['json'].write_text(json.dumps(report.as_dict(), indent=2, default=str) + '\n')
    paths['markdown'].write_text(render_markdown(report))
    if report.latency:
        paths['plot'] = out_dir / 'latency.png'
        _plot(report, paths['plot'])
    return paths
