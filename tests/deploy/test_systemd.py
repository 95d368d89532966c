"""deploy/systemd's units are valid for systemd itself (`systemd-analyze verify`: every
key known, every command executable), installed where this checkout is."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import ROOT

UNITS = ROOT / "deploy" / "systemd"
pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def test_the_units_verify(tmp_path: Path) -> None:
    names = sorted(p.name for p in UNITS.iterdir() if p.suffix in {".service", ".target"})
    assert {"sergas-web.service", "sergas-worker.service", "sergas-beat.service"} <= set(names)
    for name in names:  # as if installed in /opt/sergas = this checkout
        text = (UNITS / name).read_text().replace("/opt/sergas", str(ROOT))
        (tmp_path / name).write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = verified.stdout + verified.stderr
    assert verified.returncode == 0, complaints
    assert "Unknown" not in complaints, complaints
    assert "ignoring" not in complaints, complaints


def test_the_units_run_the_projects_own_commands() -> None:
    web = (UNITS / "sergas-web.service").read_text()
    assert "sergas.wsgi:application" in web
    assert (ROOT / "gunicorn.conf.py").is_file()  # read from WorkingDirectory
    exporter = (UNITS / "sergas-metrics.service").read_text()
    assert "manage.py serve_metrics" in exporter
    assert (ROOT / "sergas" / "management" / "commands" / "serve_metrics.py").is_file()
    for name in ("sergas.env.example", "maintenance.env.example"):
        for line in (UNITS / name).read_text().splitlines():
            assert not line or line.startswith("#") or "=" in line, line
