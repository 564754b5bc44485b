"""Benchmark reports: the table, and where and how it was measured.

Every report starts with its provenance (the command, the commit, the date, the CPU
model and core count, the library versions, and the GPU where one ran), written by
the same call that writes the rows, so that no table is published without it.
"""
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from ..fileio import atomic_open

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ('torch', 'torchvision', 'onnxruntime', 'numpy', 'mmcv', 'mmdet')


def _git(*args: str) -> str:
    try:
        return subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def commit_description() -> str:
    """``abc123def456``, with ``+ uncommitted changes`` where tracked files differ."""
    commit = _git('rev-parse', '--short=12', 'HEAD')
    if not commit:
        return 'unknown (not a git checkout)'
    dirty = _git('status', '--porcelain', '--untracked-files=no')
    return f'{commit} + uncommitted changes' if dirty else commit


def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """Python and :data:`LIBRARIES`, with the build tag where the module has one
    (``torch 2.11.0+cu130``); libraries not installed are left out."""
    versions = {'python': platform.python_version()}
    for name in LIBRARIES:
        module = sys.modules.get(name)
        try:
            versions[name] = getattr(module, '__version__', None) or version(name)
        except PackageNotFoundError:
            continue
    return versions


def provenance(argv: Optional[list[str]] = None, devices: tuple[str, ...] = ()) -> dict:
    """Where and how a benchmark ran. ``argv`` defaults to this process's command line."""
    argv = sys.argv if argv is None else argv
    record = dict(command='python ' + ' '.join(shlex.quote(a) for a in argv),
                  commit=commit_description(),
                  date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                  cpu=f'{cpu_model()}, {os.cpu_count()} cores',
                  versions=library_versions())
    if devices:
        record['gpu'] = ', '.join(devices)
    return record


def provenance_header(record: dict) -> str:
    versions = ', '.join(f'{k} {v}' for k, v in record['versions'].items())
    lines = [f'- command: `{record["command"]}`', f'- commit: {record["commit"]}',
             f'- date: {record["date"]}', f'- CPU: {record["cpu"]}', f'- versions: {versions}']
    if 'gpu' in record:
        lines.append(f'- GPU: {record["gpu"]}')
    return '\n'.join(lines) + '\n'


def write_report(rows: list[dict], table: str, out_md: Optional[str] = None,
                 out_json: Optional[str] = None, progress: Callable[[str], None] = print) -> str:
    """Print ``table`` and write it under its provenance header (``out_md``) and the rows
    with their provenance (``out_json``: ``{"provenance": ..., "rows": [...]}``)."""
    gpus = {r['device'] for r in rows if 'device' in r and not r['device'].startswith('cpu')}
    record = provenance(devices=tuple(sorted(gpus)))
    print(table)
    text = provenance_header(record) + '\n' + table + '\n'
    for path, content in ((out_md, text),
                          (out_json, json.dumps(dict(provenance=record, rows=rows), indent=2))):
        if path:
            with atomic_open(path) as f:
                f.write(content)
            progress(f'wrote {path}')
    return table
