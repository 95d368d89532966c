"""Drill: several hosts, for real; the leading beat's and a worker's network cut.

Six hosts are network namespaces on one bridge (tests/drills/network.py): a database host
(PostgreSQL and Redis listening on its own address), a web host, two beat hosts and two
worker hosts. Every process reaches the others only over the bridge; the test process
talks to the database from the bridge's own address. A long run (many batches) and a few
reviews due soon are created, then the leading beat's link and, mid-batch, a worker's link
are pulled: the processes stay alive, their connections half-open, as when a switch port
or a host's network dies. Then both links come back.

A cut leader holds its advisory lock until PostgreSQL notices the silent client; the
leadership connection asks the server for keepalive probes (scheduling/beat.py), so the
takeover is bounded by ``keepalives_idle + keepalives_interval x keepalives_count`` (5 s
here, through the drill's DATABASE_URL; 60 s with the defaults). The cut worker's batch
is taken over when its lease (``SCHEDULING_BATCH_LEASE_SECONDS``) runs out, and its late
result is refused. Checked: every run once per nominal time, every account reviewed once,
the session's counts right, the old leader standing by, ``verify_audit`` passing.
"""

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from sessions.state import SessionContext, SessionMetrics
from tests.drills.network import Host, LocalNetwork
from tests.drills.servers import Gunicorn, PostgresOnHost, RedisOnHost, manage
from tests.processes import CeleryProcess, beat, worker
from tests.scheduling.test_runs import wait_for

pytestmark = pytest.mark.drill

ROLES = ("db", "web", "beat1", "beat2", "worker1", "worker2")
ACCOUNTS = 96
BATCH = 4
LEASE_SECONDS = 6
DUE_SOON = 6  # reviews of a few accounts, due 1.5 s apart around the beat cut
# libpq keepalives in the DATABASE_URL (DATABASES OPTIONS): 2 + 1 x 3 = 5 s of silence.
KEEPALIVES = {"keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 3}
SILENCE_SECONDS = 5
PROCESS_ENV = {
    "SCHEDULING_SIMULATED_ACCOUNT_MS": "250",
    "SCHEDULING_SIMULATED_FAILURE_RATE": "0",
    "SCHEDULING_RUNNER_BATCH_SIZE": str(BATCH),
    "SCHEDULING_BATCH_LEASE_SECONDS": str(LEASE_SECONDS),
    "SCHEDULING_RECOVERY_CHECK_SECONDS": "1",
    "SCHEDULING_DISPATCH_LEAD_SECONDS": "0",  # runs due in the gap wait for the new leader
}
CREATE_REVIEWS = """
from datetime import timedelta
from django.utils import timezone
from tests.scheduling.factories import make_review
now = timezone.now()
long_run = make_review(
    name="drill: long run", schedule_type="interval", interval_minutes=60,
    starts_at=now + timedelta(seconds=2), account_filter={{"count": {accounts}}}, max_retries=0,
)
for i in range({due_soon}):
    make_review(
        name=f"drill: due soon {{i}}", schedule_type="interval", interval_minutes=60,
        starts_at=now + timedelta(seconds=6 + 1.5 * i), account_filter={{"count": 2}},
    )
print(long_run.pk)
"""
READ_SESSION = """
import json
from sessions.models import AgentSession
s = AgentSession.objects.get(pk="{session_id}")
print(json.dumps({{"context": s.context, "metrics": s.metrics, "recovery_count": s.recovery_count}},
                 default=str))
"""


class Stoppable(Protocol):
    def stop(self) -> None: ...


@pytest.fixture
def network() -> Iterator[LocalNetwork]:
    """The hosts; torn down at the end, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    net = LocalNetwork()
    try:
        net.create()
        for role in ROLES:
            net.add_host(role)
    except (OSError, subprocess.CalledProcessError) as exc:
        net.destroy()
        detail = getattr(exc, "stderr", "") or exc
        pytest.skip(f"network namespaces are not allowed here: {detail}")
    try:
        yield net
    finally:
        net.destroy()


@pytest.fixture
def owned(network: LocalNetwork) -> Iterator[list[Stoppable]]:
    """Servers and processes of the drill, stopped before the network goes (last first)."""
    started: list[Stoppable] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def _log_after(process: CeleryProcess, offset: int) -> str:
    return process.log()[offset:]


def _dispatched(log: str) -> int:
    """Reviews a beat dispatched, by its ``Dispatched N review(s)`` lines."""
    return sum(int(n) for n in re.findall(r"Dispatched (\d+) review", log))


def _mid_batch(process: CeleryProcess) -> bool:
    """The worker received a batch's message and has not finished it."""
    lines = [line for line in process.log().splitlines() if "run_review_batch[" in line]
    return bool(lines) and lines[-1].rstrip().endswith("received")


def _count(db: Any, sql: str, *params: Any) -> int:
    return db.execute(sql, params).fetchone()[0]


def test_hosts_cut_off_the_network_lose_and_double_nothing(
    network: LocalNetwork, owned: list[Stoppable], tmp_path: Path, drill_report
):
    hosts: dict[str, Host] = network.hosts
    postgres = PostgresOnHost(tmp_path, hosts["db"], network.subnet)
    owned.append(postgres)  # stopped and removed even if it fails to start
    postgres.start()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisOnHost(redis_dir, hosts["db"])
    owned.append(redis)
    redis.start()
    prefix = f"drill-hosts-{uuid.uuid4().hex[:8]}"
    env = {
        "DJANGO_SETTINGS_MODULE": "sergas.settings.test",
        "DATABASE_URL": postgres.url(**KEEPALIVES),
        "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url,
        "CACHE_KEY_PREFIX": prefix,
        "SESSION_CACHE_KEY_PREFIX": prefix,
        "AUDIT_WITNESS_FILES": str(tmp_path / "witness.jsonl"),
        **PROCESS_ENV,
    }
    web = hosts["web"]
    manage("migrate", "--noinput", env=env, prefix=web.prefix())
    manage("maintain_audit_partitions", env=env, prefix=web.prefix())
    drill_report.note("host addresses", ", ".join(f"{h.role} {h.address}" for h in hosts.values()))

    gunicorn = Gunicorn(8000, tmp_path, env, host=web.address, prefix=web.prefix()).start()
    owned.append(gunicorn)
    workers = {
        name: worker(tmp_path, "--pool", "solo", prefix=hosts[name].prefix(), **env).start()
        for name in ("worker1", "worker2")
    }
    owned.extend(workers.values())
    leader = beat(tmp_path, prefix=hosts["beat1"].prefix(), **env).start()
    owned.append(leader)
    leader.wait_for_log("Beat leadership acquired", timeout=60)
    standby = beat(tmp_path, prefix=hosts["beat2"].prefix(), **env).start()
    owned.append(standby)
    standby.wait_for_log("Beat standing by", timeout=60)
    drill_report.count("hosts", len(hosts))

    review_id = int(
        manage(
            "shell",
            "-c",
            CREATE_REVIEWS.format(accounts=ACCOUNTS, due_soon=DUE_SOON),
            env=env,
            prefix=web.prefix(),
        ).split()[-1]
    )
    db = postgres.connect()
    run_id = wait_for(
        lambda: db.execute(
            "SELECT id FROM schedule_execution WHERE review_id = %s AND session_id IS NOT NULL",
            [review_id],
        ).fetchone(),
        timeout=60,
        what="the long run to start",
    )[0]
    # Both workers busy (each runs one batch at a time), the one to cut in a batch's midst.
    running = "SELECT count(*) FROM schedule_run_batch WHERE execution_id = %s AND status = %s"
    wait_for(
        lambda: _count(db, running, run_id, "running") >= 2 and _mid_batch(workers["worker1"]),
        timeout=60,
        what="a batch in flight on each worker",
    )

    # Step 2: pull the leading beat's cable.
    leader_offset = len(leader.log())
    standby_offset = len(standby.log())
    hosts["beat1"].cut()
    beat_cut_at = time.monotonic()
    drill_report.count("links cut")
    # Step 3: and a worker's, mid-batch.
    hosts["worker1"].cut()
    worker_cut_at = time.monotonic()
    worker1_offset = len(workers["worker1"].log())
    drill_report.count("links cut")

    standby.wait_for_log("Beat leadership acquired", timeout=120)
    takeover = time.monotonic() - beat_cut_at
    drill_report.note("beat cut -> standby leads", f"{takeover:.1f} s")
    expired = "SELECT count(*) FROM audit_event WHERE action = 'batch_lease_expired'"
    wait_for(lambda: _count(db, expired) >= 1, timeout=120, what="the cut worker's lease to end")
    drill_report.note(
        "worker cut -> its batch claimable again", f"{time.monotonic() - worker_cut_at:.1f} s"
    )

    # Step 4: both links back.
    hosts["beat1"].restore()
    hosts["worker1"].restore()
    drill_report.count("links restored", 2)
    wait_for(
        lambda: (
            _count(db, "SELECT count(*) FROM schedule_execution WHERE status = 'succeeded'")
            >= 1 + DUE_SOON
        ),
        timeout=120,
        what="every run to succeed",
    )
    leader.wait_for_log("Beat standing by", timeout=60)
    old_leader_after_cut = _log_after(leader, leader_offset)
    # The cut worker's late answer for its batch, if it sent one, is refused.
    wait_for(
        lambda: "run_review_batch" in _log_after(workers["worker1"], worker1_offset),
        timeout=60,
        what="the cut worker to finish its batch",
    )
    time.sleep(2)  # a duplicate dispatch, if any, would be there by now

    runs_per_nominal_time = db.execute(
        "SELECT review_id, nominal_time, count(*) FROM schedule_execution"
        " GROUP BY review_id, nominal_time ORDER BY nominal_time"
    ).fetchall()
    late = db.execute(
        "SELECT extract(epoch FROM enqueued_at - nominal_time) FROM schedule_execution"
        " WHERE review_id <> %s ORDER BY nominal_time",
        [review_id],
    ).fetchall()
    status, processed, failed, session_id = db.execute(
        "SELECT status, accounts_processed, accounts_failed, session_id"
        " FROM schedule_execution WHERE id = %s",
        [run_id],
    ).fetchone()
    # The session's context and metrics are composed from several tables: ask Django.
    printed = manage(
        "shell", "-c", READ_SESSION.format(session_id=session_id), env=env, prefix=web.prefix()
    )
    session = json.loads(printed.strip().splitlines()[-1])
    context_json, metrics_json = session["context"], session["metrics"]
    recoveries = session["recovery_count"]
    context, metrics = SessionContext.load(context_json), SessionMetrics.load(metrics_json)
    reviews_per_account = dict(
        db.execute(
            "SELECT account_id, count(*) FROM schedule_account_review"
            " WHERE execution_id = %s GROUP BY account_id",
            [run_id],
        ).fetchall()
    )
    taken_over = db.execute(
        "SELECT index, attempts FROM schedule_run_batch WHERE execution_id = %s AND attempts > 1",
        [run_id],
    ).fetchall()
    superseded = _log_after(workers["worker1"], worker1_offset).count("'superseded'")
    new_leader_dispatches = _dispatched(_log_after(standby, standby_offset))
    old_leader_dispatches = _dispatched(old_leader_after_cut)
    # What the server does for connections that do not ask: the kernel's keepalive.
    server_idle = _count(
        db, "SELECT setting::int FROM pg_settings WHERE name = %s", "tcp_keepalives_idle"
    )
    kernel_idle = subprocess.run(
        [*hosts["db"].prefix(), "cat", "/proc/sys/net/ipv4/tcp_keepalive_time"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    db.close()
    manage("seal_audit", env=env, prefix=web.prefix())
    verified = manage("verify_audit", env=env, prefix=web.prefix())

    drill_report.note(
        "takeover bound (keepalive silence + standby poll)", f"{SILENCE_SECONDS} s + 0.5 s"
    )
    drill_report.note("runs per (review, nominal time)", [row[2] for row in runs_per_nominal_time])
    drill_report.note("due-soon runs published late by (s)", [round(float(r[0]), 1) for r in late])
    drill_report.note(
        "server keepalive without the leader's options",
        f"tcp_keepalives_idle {server_idle} s (the kernel's: {kernel_idle} s)",
    )
    drill_report.note(
        "old leader's log after its cut",
        f"{old_leader_after_cut.count('database unavailable')} x database unavailable, "
        f"{old_leader_after_cut.count('Beat standing by')} x standing by",
    )
    drill_report.note("reviews dispatched by the new leader", new_leader_dispatches)
    drill_report.note("reviews dispatched by the old leader after its cut", old_leader_dispatches)
    drill_report.note("long run", f"{status}, {processed} processed + {failed} failed")
    drill_report.note("accounts reviewed", f"{len(reviews_per_account)} of {ACCOUNTS}")
    drill_report.note(
        "accounts reviewed twice", sum(1 for n in reviews_per_account.values() if n > 1)
    )
    drill_report.note("batches taken over (index, attempts)", taken_over)
    drill_report.note("late results of the cut worker refused", superseded)
    drill_report.note("session recoveries", recoveries)
    drill_report.note("verify_audit", verified.strip().splitlines()[-1] if verified.strip() else "")

    assert all(count == 1 for _, _, count in runs_per_nominal_time)
    assert len(runs_per_nominal_time) == 1 + DUE_SOON
    assert status == "succeeded"
    assert processed + failed == ACCOUNTS
    assert set(reviews_per_account) == set(context.account_ids)
    assert all(count == 1 for count in reviews_per_account.values())
    assert context.processed_accounts | context.failed_accounts == set(context.account_ids)
    assert len(metrics.account_processing_times_ms) == ACCOUNTS
    assert taken_over  # the cut worker's batch went to the other worker
    assert old_leader_dispatches == 0
    assert "Beat leadership acquired" not in old_leader_after_cut
