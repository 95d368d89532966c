"""Audit search and retention at scale: 10 million events over 12 months.

Loads the events into a scratch copy of ``audit_event`` (schema ``bench_audit``: the
same columns, monthly partitions, the real hash trigger, then the same indexes), points
the connection's search_path at it and measures the project's own search selector
(``audit.selectors.audit_events_query``, a page of 50 as the API and dashboard ask for)
with a one-month window and each filter: p50 and p95 over random parameters. Target:
p95 < 50 ms.

Then, in the same run, it removes a month: ``DELETE`` of its rows (the original design's
retention; timed, then rolled back), against detaching and dropping its partition
(ours); and, for the space to be reusable, ``DELETE`` + ``VACUUM`` of the next month
(as many events). Target: the drop at least 100x faster than the DELETE. Each step
starts after a CHECKPOINT, as a years-old month would.

The scratch schema is dropped at the end (``--keep`` keeps it for a second look). The
load keeps the BEFORE INSERT hash trigger on, as in production, and reports its rate.

Last, on the real tables: witnessed seals. Writers ingest events at full speed for a
while as the sealer seals (and, with a signing key and a file witness, signs each head
and publishes it) every second: events/s with and without the witness. Then
``audit_event_proof`` for random sealed events (p50, p99), and ``verify_audit`` over
the sealed events with the signatures and the witness checked against without (target:
within 10%). Everything runs in a database of its own (``<name>_bench_audit_query``).

    DATABASE_URL=... python bench/audit_query.py [--quick] [--events N] [--samples N]
"""

import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Figure, migrate, parser, percentile, report, use_fresh_database

SCHEMA = "bench_audit"
MONTHS = 12
FIRST_MONTH = datetime(2025, 1, 1, tzinfo=UTC)
EVENTS_PER_SESSION = 50
AGENTS = 500
ACCOUNTS = 50_000
TARGET_P95_MS = 50.0
TARGET_SPEEDUP = 100.0
PAGE = 50
TYPES = [
    # (event type, action, share in percent)
    ("tool", "post_tool", 50),
    ("task", "post_task", 20),
    ("session_lifecycle", "start", 10),
    ("session_context", "update_context", 8),
    ("session_metrics", "update_metrics", 6),
    ("session_checkpoint", "checkpoint", 4),
    ("schedule", "dispatch", 1),
    ("auth", "login", 1),
]


def _month(index: int) -> datetime:
    year, month = divmod(FIRST_MONTH.month - 1 + index, 12)
    return FIRST_MONTH.replace(year=FIRST_MONTH.year + year, month=month + 1)


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _execute(sql: str, params: Any = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def _type_case() -> tuple[str, str]:
    """CASE expressions picking the type and the action from a bucket ``b`` in 0..99."""
    types, actions, upper = [], [], 0
    for event_type, action, share in TYPES:
        upper += share
        types.append(f"WHEN b < {upper} THEN '{event_type}'")
        actions.append(f"WHEN b < {upper} THEN '{action}'")
    return f"CASE {' '.join(types)} END", f"CASE {' '.join(actions)} END"


def build(events: int) -> float:
    """Create and fill the scratch table; returns the load rate in events per second."""
    app_schema = _execute(
        "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'audit_event'::regclass"
    )[0][0]
    _execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    _execute(f"CREATE SCHEMA {SCHEMA}")
    _execute(
        f"CREATE TABLE {SCHEMA}.audit_event (LIKE {app_schema}.audit_event INCLUDING DEFAULTS)"
        ' PARTITION BY RANGE ("timestamp")'
    )
    for index in range(MONTHS):
        start, end = _month(index), _month(index + 1)
        _execute(
            f"CREATE TABLE {SCHEMA}.audit_event_{start:%Y_%m} PARTITION OF {SCHEMA}.audit_event"
            " FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    _execute(f"CREATE TABLE {SCHEMA}.audit_event_default PARTITION OF {SCHEMA}.audit_event DEFAULT")
    _execute(
        f"CREATE TRIGGER audit_event_stamp BEFORE INSERT ON {SCHEMA}.audit_event"
        f" FOR EACH ROW EXECUTE FUNCTION {app_schema}.audit_event_stamp()"
    )

    span = (_month(MONTHS) - FIRST_MONTH).total_seconds()
    types, actions = _type_case()
    chunk = max(events // 20, 1000)
    started = time.perf_counter()
    for low in range(1, events + 1, chunk):
        high = min(low + chunk - 1, events)
        # Deterministic pseudo-randomness from the row number: reruns load the same data.
        _execute(
            f"""
            INSERT INTO {SCHEMA}.audit_event
                (event_id, "timestamp", session_id, event_type, actor, action, resource, metadata)
            SELECT gen_random_uuid(), ts, session_id, {types},
                   'agent:orch-' || (session_no %% {AGENTS}), {actions},
                   'session:' || session_id,
                   jsonb_build_object(
                       'version', i %% {EVENTS_PER_SESSION} + 1,
                       'tool_name', 'tool_' || (i * 7 %% 40),
                       'account_id', 'acct_' || (i * 2654435761 %% {ACCOUNTS}),
                       'duration_ms', i * 31 %% 997)
              FROM (
                SELECT i,
                       %s::timestamptz + (i - 1) * (%s::float8 / %s) * interval '1 second' AS ts,
                       (i - 1) / {EVENTS_PER_SESSION} AS session_no,
                       'session_bench_' || lpad(to_hex((i - 1) / {EVENTS_PER_SESSION}), 8, '0')
                           AS session_id,
                       i * 2246822519 %% 100 AS b
                  FROM generate_series(%s::bigint, %s::bigint) AS i
              ) AS generated
            """,
            [FIRST_MONTH, span, events, low, high],
        )
        _say(f"loaded {high:,} / {events:,} events")
    rate = events / (time.perf_counter() - started)

    definitions = _execute(
        """
        SELECT pg_get_indexdef(index.indexrelid) FROM pg_index AS index
         WHERE index.indrelid = 'audit_event'::regclass AND NOT index.indisprimary
        """
    )
    _execute("SET maintenance_work_mem = '256MB'")
    _say("building the primary key and indexes")
    _execute(f'ALTER TABLE {SCHEMA}.audit_event ADD PRIMARY KEY (event_id, "timestamp")')
    for (definition,) in definitions:
        _execute(
            definition.replace(f" ON ONLY {app_schema}.audit_event ", f" ON {SCHEMA}.audit_event ")
        )
    _execute(f"ANALYZE {SCHEMA}.audit_event")
    _execute(f"SET search_path = {SCHEMA}, {app_schema}")
    return rate


def _searches(events: int, rng: random.Random) -> dict[str, Callable[[], dict[str, Any]]]:
    """Filter name -> a function drawing the selector's arguments for one query."""
    per_month = events // MONTHS

    def window() -> tuple[int, datetime, datetime]:
        index = rng.randrange(MONTHS)
        return index, _month(index), _month(index + 1)

    def session_in(index: int) -> str:
        row = index * per_month + rng.randrange(max(per_month, 1)) + 1
        return f"session_bench_{(row - 1) // EVENTS_PER_SESSION:08x}"

    def draw(make: Callable[[int], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        def arguments() -> dict[str, Any]:
            index, start, end = window()
            return {"start": start, "end": end, **make(index)}

        return arguments

    return {
        "time window only": draw(lambda index: {}),
        "session": draw(lambda index: {"session_id": session_in(index)}),
        "event type": draw(lambda index: {"event_type": rng.choice(TYPES)[0]}),
        "actor": draw(lambda index: {"actor": f"agent:orch-{rng.randrange(AGENTS)}"}),
        "resource": draw(lambda index: {"resource": f"session:{session_in(index)}"}),
        "metadata contains": draw(
            lambda index: {"metadata_contains": {"account_id": f"acct_{rng.randrange(ACCOUNTS)}"}}
        ),
    }


def measure_searches(events: int, samples: int) -> list[Figure]:
    from audit.selectors import audit_events_query

    rng = random.Random(7)
    figures = []
    for name, arguments in _searches(events, rng).items():
        for _ in range(3):  # warm the plan and buffer caches
            list(audit_events_query(**arguments())[:PAGE])
        timings, found = [], 0
        for _ in range(samples):
            query = audit_events_query(**arguments())[:PAGE]
            started = time.perf_counter()
            found += len(list(query))
            timings.append((time.perf_counter() - started) * 1000)
        p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
        label = f"search by {name}, 1-month window"
        figures.append(Figure(f"{label}, p50", p50, "ms"))
        figures.append(
            Figure(
                f"{label}, p95",
                p95,
                "ms",
                target=f"< {TARGET_P95_MS:.0f} ms",
                met=p95 < TARGET_P95_MS,
            )
        )
        _say(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {found / samples:.1f} rows a page")
    return figures


def measure_verification(events: int) -> Figure:
    """verify_audit's throughput over one month: recomputing each event's hash from its
    columns in Python is its bulk (the scratch events are not sealed)."""
    from audit.integrity.verification import audit_trail_verify

    index = MONTHS // 2 - 1
    started = time.perf_counter()
    report = audit_trail_verify(start=_month(index), end=_month(index + 1))
    seconds = time.perf_counter() - started
    _say(f"verified {report.events:,} events in {seconds:.1f} s")
    return Figure(
        f"verify one month ({report.events:,} events)", report.events / seconds, "events/s"
    )


def _ingest_while_sealing(seconds: float, *, witnessed: bool) -> float:
    """Events/s written by two writer threads for ``seconds`` while a sealer thread seals
    (and, ``witnessed``, signs and publishes) every second; the last seal included."""
    import tempfile
    import threading

    from django.conf import settings
    from django.db import connection

    from audit.integrity.keys import keys_cache_clear
    from audit.services import audit_events_record_generated, audit_events_seal, audit_heads_publish

    scratch = Path(tempfile.mkdtemp(prefix="sergas-bench-witness-"))
    settings.AUDIT_SIGNING_KEY_FILE = str(scratch / "key.pem") if witnessed else ""
    settings.AUDIT_SIGNING_KEY_AUTOCREATE = witnessed
    settings.AUDIT_WITNESSES = (
        [
            {
                "NAME": "bench",
                "BACKEND": "audit.integrity.witnesses.FileWitness",
                "OPTIONS": {"path": str(scratch / "heads.jsonl")},
            }
        ]
        if witnessed
        else []
    )
    keys_cache_clear()
    stop = threading.Event()
    written = [0, 0]

    def write(slot: int) -> None:
        try:
            while not stop.is_set():
                audit_events_record_generated(
                    {
                        "event_type": "tool",
                        "action": "post_tool",
                        "actor": "agent:bench",
                        "resource": "tool:crm.get_account",
                        "session_id": f"session_bench_{slot}",
                        "metadata": {"duration_ms": 42, "n": n},
                    }
                    for n in range(100)
                )
                written[slot] += 100
        finally:
            connection.close()

    def seal() -> None:
        try:
            while not stop.wait(1.0):
                audit_events_seal()
                audit_heads_publish()
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(slot,)) for slot in range(2)]
    sealer = threading.Thread(target=seal)
    started = time.perf_counter()
    for thread in [*threads, sealer]:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in [*threads, sealer]:
        thread.join()
    audit_events_seal()
    audit_heads_publish()
    elapsed = time.perf_counter() - started
    return sum(written) / elapsed


def measure_witnessed_sealing(*, seconds: float) -> list[Figure]:
    plain = _ingest_while_sealing(seconds, witnessed=False)
    witnessed = _ingest_while_sealing(seconds, witnessed=True)
    _say(f"ingest while sealing: {plain:,.0f} events/s plain, {witnessed:,.0f} witnessed")
    return [
        Figure(
            "ingest while sealing every second, seals signed and published to a file witness",
            witnessed,
            "events/s",
            baseline_name="sealing without signing or witness",
            baseline_value=plain,
        )
    ]


def measure_proofs(samples: int) -> list[Figure]:
    from django.db import connection

    from audit.selectors import audit_event_proof

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id FROM audit_event WHERE xact_id < (SELECT max(xact_to) FROM"
            " audit_seal WHERE signature IS NOT NULL) AND xact_id >= (SELECT min(xact_from)"
            " FROM audit_seal WHERE signature IS NOT NULL) ORDER BY random() LIMIT %s",
            [samples],
        )
        ids = [row[0] for row in cursor.fetchall()]
    timings = []
    for event_id in ids:
        started = time.perf_counter()
        audit_event_proof(event_id)
        timings.append((time.perf_counter() - started) * 1000)
    p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
    _say(f"inclusion proofs: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return [
        Figure("inclusion proof of a sealed event, p50", p50, "ms"),
        Figure("inclusion proof of a sealed event, p99", p99, "ms"),
    ]


def measure_witnessed_verification() -> list[Figure]:
    """verify_audit over the sealed events: signatures and the witness checked, against
    the same run with both switched off (hashes, members and Merkle roots in both)."""
    from django.conf import settings

    from audit.integrity.keys import keys_cache_clear
    from audit.integrity.verification import audit_trail_verify

    def rate() -> float:
        started = time.perf_counter()
        report = audit_trail_verify()
        return report.events / (time.perf_counter() - started)

    witnessed = rate()
    key, witnesses = settings.AUDIT_SIGNING_KEY_FILE, settings.AUDIT_WITNESSES
    settings.AUDIT_SIGNING_KEY_FILE, settings.AUDIT_WITNESSES = "", []
    keys_cache_clear()
    plain = rate()
    settings.AUDIT_SIGNING_KEY_FILE, settings.AUDIT_WITNESSES = key, witnesses
    keys_cache_clear()
    _say(f"verification: {witnessed:,.0f} events/s witnessed, {plain:,.0f} without")
    return [
        Figure(
            "verify the sealed trail, signatures and witness checked",
            witnessed,
            "events/s",
            baseline_name="without signatures or witness",
            baseline_value=plain,
            target="within 10%",
            met=witnessed >= 0.9 * plain,
        )
    ]


def _checkpoint() -> None:
    """Flush dirty pages first, so each timed operation starts from the state a
    years-old month is in (its next change logs full-page images) and pays for no
    earlier operation's writes. Needs superuser or pg_checkpoint; skipped otherwise."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic():
            _execute("CHECKPOINT")
    except DatabaseError:
        _say("CHECKPOINT not permitted: measuring without it")


def _cold_cache() -> bool:
    """Empty the kernel's page cache (root only), as a years-old month is not in memory:
    the DELETE then reads the month from disk, the drop unlinks files nobody cached."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as drop:
            drop.write("1\n")
    except OSError:
        return False
    return True


def measure_retention() -> list[Figure]:
    """Remove one month by detach + drop, against DELETE of the same rows (timed, then
    rolled back) and against DELETE + VACUUM (what it takes to get the space back, on
    the next month, which holds as many events: both months have 31 days). Measured
    warm (the months were just loaded) and, where the page cache can be emptied (root),
    cold: how a month past a seven-year retention really is."""
    figures = _measure_removal(cold=False)
    if _cold_cache():
        figures += _measure_removal(cold=True)
    else:
        _say("cannot empty the page cache (not root): the cold measurement is skipped")
    return figures


def _measure_removal(*, cold: bool) -> list[Figure]:
    from django.db import connection, transaction

    # Warm uses the middle months, cold the two before them: each removal is of a month
    # nothing else touched.
    july, august = (MONTHS // 2 - 2, MONTHS // 2 - 1) if cold else (MONTHS // 2, MONTHS // 2 + 1)
    label = "cold cache" if cold else "warm cache"
    partitions = {index: f"{SCHEMA}.audit_event_{_month(index):%Y_%m}" for index in (july, august)}
    rows = _execute(f"SELECT count(*) FROM {partitions[july]}")[0][0]
    where = '"timestamp" >= %s AND "timestamp" < %s'

    _checkpoint()
    if cold:
        _cold_cache()
    _say(f"DELETE of {rows:,} rows (then rolled back), {label}")
    with transaction.atomic():
        wal = _wal_position()
        started = time.perf_counter()
        _execute(
            f"DELETE FROM {SCHEMA}.audit_event WHERE {where}", [_month(july), _month(july + 1)]
        )
        delete_seconds = time.perf_counter() - started
        delete_wal = _wal_since(wal)
        transaction.set_rollback(True)

    _checkpoint()
    if cold:
        _cold_cache()
    _say(f"DELETE + VACUUM of the next month, {label}")
    started = time.perf_counter()
    _execute(
        f"DELETE FROM {SCHEMA}.audit_event WHERE {where}", [_month(august), _month(august + 1)]
    )
    _execute(f"VACUUM {partitions[august]}")
    vacuum_seconds = time.perf_counter() - started

    _checkpoint()
    if cold:
        _cold_cache()
    _say(f"detach and drop of the first month, {label}")
    wal = _wal_position()
    started = time.perf_counter()
    with transaction.atomic():
        _execute(f"ALTER TABLE {SCHEMA}.audit_event DETACH PARTITION {partitions[july]}")
        _execute(f"DROP TABLE {partitions[july]}")
        statements_seconds = time.perf_counter() - started
    # The commit removes the month's files (PostgreSQL truncates them, then the kernel
    # frees the blocks): the part that depends on the filesystem, not on the rows.
    drop_seconds = time.perf_counter() - started
    drop_wal = max(_wal_since(wal), 1)
    connection.close()
    return [
        Figure(
            f"remove one month ({rows:,} events), {label}: detach + drop",
            drop_seconds * 1000,
            "ms",
            baseline_name="DELETE of the same rows",
            baseline_value=delete_seconds * 1000,
        ),
        Figure(
            f"detach + drop speed-up over DELETE, {label}",
            delete_seconds / drop_seconds,
            "x",
            target=f">= {TARGET_SPEEDUP:.0f}x",
            met=delete_seconds / drop_seconds >= TARGET_SPEEDUP,
        ),
        Figure(
            f"remove one month, {label}: the detach + drop statements, before the commit",
            statements_seconds * 1000,
            "ms",
            baseline_name="DELETE of the same rows",
            baseline_value=delete_seconds * 1000,
        ),
        Figure(
            f"remove one month, {label}: the commit (the month's files removed)",
            (drop_seconds - statements_seconds) * 1000,
            "ms",
        ),
        Figure(
            f"remove one month, {label}: detach + drop",
            drop_seconds * 1000,
            "ms",
            baseline_name="DELETE + VACUUM, space reusable again",
            baseline_value=vacuum_seconds * 1000,
        ),
        Figure(
            f"detach + drop speed-up over DELETE + VACUUM, {label}",
            vacuum_seconds / drop_seconds,
            "x",
        ),
        Figure(
            f"WAL written to remove one month, {label}: detach + drop",
            drop_wal / 1024,
            "KiB",
            baseline_name="DELETE of the same rows",
            baseline_value=delete_wal / 1024,
        ),
    ]


def _wal_position() -> str:
    return _execute("SELECT pg_current_wal_insert_lsn()::text")[0][0]


def _wal_since(position: str) -> int:
    """Bytes of WAL written since ``position`` (what replicas and backups must carry)."""
    return int(
        _execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [position])[0][0]
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--events", type=int, help="events to load (default 10,000,000)")
    arguments.add_argument("--samples", type=int, help="queries measured per filter")
    arguments.add_argument("--keep", action="store_true", help="keep the scratch schema")
    options = arguments.parse_args(argv)
    events = options.events or (24_000 if options.quick else 10_000_000)
    samples = options.samples or (10 if options.quick else 200)

    use_fresh_database("audit_query")
    migrate()
    from django.db import connection

    try:
        _say(f"loading {events:,} events over {MONTHS} months into {SCHEMA}")
        started = time.perf_counter()
        rate = build(events)
        _say(f"built in {time.perf_counter() - started:.0f} s")
        figures = [Figure("load with the hash trigger on", rate, "events/s")]
        figures += measure_searches(events, samples)
        figures.append(measure_verification(events))
        figures += measure_retention()
    finally:
        if not options.keep:
            connection.close()
            _execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            connection.close()
    figures += measure_witnessed_sealing(seconds=4 if options.quick else 20)
    figures += measure_proofs(samples)
    figures += measure_witnessed_verification()
    report(
        "audit_query",
        figures,
        quick=options.quick,
        notes=f"{events:,} events over {MONTHS} monthly partitions; page of {PAGE};"
        f" {samples} queries per filter",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
