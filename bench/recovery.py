"""Recovery from a checkpoint: sessions with 10 KB and 1 MB contexts, through the
service and through the API, against a plain SELECT of the checkpoint row.

Each measured recovery is of an interrupted session with a checkpoint of that size
(interrupting it again between recoveries is not timed). Two cases: the session still
equals its checkpoint (batches checkpoint as they record), and the crash case, where the
session changed after its checkpoint (accounts processed and failed, metadata, counters,
processing times: untimed, before each interruption) and recovery has to restore it.
The service path calls ``session_recover`` in this process; the API path is
``POST /api/v1/sessions/{id}/recover`` on gunicorn with a real token, timed at the
client. The baseline fetches the newest
checkpoint row (its context and metrics) with one indexed SELECT: the least a recovery
has to read. Targets: p99 < 20 ms at 1 MB via the API (both cases), and a lifecycle
action via the API p50 <= 2x the service call (10 KB, unchanged: recover's p50).
A database of its own is used (``<DATABASE_URL name>_bench_recovery``).
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Figure,
    gunicorn,
    migrate,
    parser,
    percentile,
    report,
    use_fresh_database,
)

SIZES = {"10 KB": 10 * 1024, "1 MB": 1024 * 1024}
TARGET_MS = 20.0
API_OVER_SERVICE = 2.0
ACTOR = "bench:recovery"


def _context(size: int, seed: str) -> dict:
    """A realistic big context: account ids, most of them processed (~40 bytes each)."""
    count = max(1, size // 40)
    accounts = [f"acct_{seed}_{index:07d}" for index in range(count)]
    return {"account_ids": accounts, "processed_accounts": accounts[: count * 9 // 10]}


def _session(size: int, index: int) -> str:
    from sessions import services

    session = services.session_create(
        orchestrator_id="bench-recovery", context=_context(size, f"{size}x{index}"), actor=ACTOR
    )
    services.session_start(session.session_id, actor=ACTOR)
    services.session_checkpoint(session.session_id, actor=ACTOR)
    services.session_interrupt(session.session_id, reason="bench", actor=ACTOR)
    context = _context(size, f"{size}x{index}")
    _unprocessed[session.session_id] = context["account_ids"][len(context["processed_accounts"]) :]
    return session.session_id


def _interrupt(session_id: str) -> None:
    from sessions import services

    services.session_interrupt(session_id, reason="bench", actor=ACTOR)


def _change_then_interrupt(session_id: str) -> None:
    """What an agent did after the checkpoint before it died: accounts processed and
    failed, metadata, counters, processing times. Recovery has to undo all of it."""
    from sessions import services

    unprocessed = _unprocessed[session_id]
    services.session_update_context(
        session_id,
        changes={
            "processed_accounts": unprocessed[:5],
            "failed_accounts": unprocessed[5:8],
            "metadata": {"crashed_in": "bench"},
        },
        increments={"current_batch": 1, "recommendations_count": 7},
        actor=ACTOR,
    )
    services.session_update_metrics(
        session_id,
        counters={"api_call_count": 4, "token_usage": 300},
        processing_times_ms=[11, 12, 13, 14, 15],
        actor=ACTOR,
    )
    _interrupt(session_id)


# The accounts of each session that its checkpoint has not processed.
_unprocessed: dict[str, list[str]] = {}


def _timed(
    samples: int,
    session_ids: list[str],
    operation: object,
    *,
    recovers: bool = True,
    changed: bool = False,
) -> list[float]:
    """Run ``operation`` ``samples`` times round the sessions; milliseconds each. After a
    recovery the session is interrupted again, untimed, for the next one (``changed``:
    after changing its state first)."""
    timings = []
    for session_id in session_ids:
        if changed:
            from sessions import services

            services.session_recover(session_id, actor=ACTOR)
            _change_then_interrupt(session_id)
    for number in range(samples):
        session_id = session_ids[number % len(session_ids)]
        started = time.perf_counter()
        operation(session_id)
        timings.append((time.perf_counter() - started) * 1000)
        if recovers:
            (_change_then_interrupt if changed else _interrupt)(session_id)
    return timings


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--samples", type=int, default=None, help="recoveries per path")
    options = arguments.parse_args()
    samples = options.samples or (20 if options.quick else 300)

    use_fresh_database("recovery")
    migrate()
    import logging

    import httpx
    from django.db import connection

    from access.services import agent_token_create
    from sessions import services

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    token = agent_token_create(name="bench-recovery", scopes=["write"], actor=ACTOR).secret
    figures: list[Figure] = []
    with (
        gunicorn(workers=2) as base,
        httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http,
    ):

        def via_api(session_id: str) -> None:
            response = http.post(f"/sessions/{session_id}/recover")
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

        def baseline(session_id: str) -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT context, metrics FROM agent_session_checkpoint"
                    " WHERE session_id = %s ORDER BY sequence DESC LIMIT 1",
                    [session_id],
                )
                cursor.fetchone()

        api_p50: dict[tuple[str, bool], float] = {}
        service_p50: dict[tuple[str, bool], float] = {}
        for label, size in SIZES.items():
            session_ids = [_session(size, index) for index in range(5)]
            select = _timed(samples, session_ids, baseline, recovers=False)
            base_p50, base_p99 = percentile(select, 0.5), percentile(select, 0.99)
            for changed in (False, True):
                case = " changed after the checkpoint" if changed else ""
                service = _timed(
                    samples,
                    session_ids,
                    lambda sid: services.session_recover(sid, actor=ACTOR),
                    changed=changed,
                )
                api = _timed(samples, session_ids, via_api, changed=changed)
                service_p50[label, changed] = percentile(service, 0.5)
                api_p50[label, changed] = percentile(api, 0.5)
                for path, timings in (("service", service), ("API", api)):
                    p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
                    at_target = label == "1 MB" and path == "API"
                    figures += [
                        Figure(
                            name=f"recover {label}{case} via {path} p50",
                            value=p50,
                            unit="ms",
                            baseline_name="SELECT of the checkpoint row p50",
                            baseline_value=base_p50,
                        ),
                        Figure(
                            name=f"recover {label}{case} via {path} p99",
                            value=p99,
                            unit="ms",
                            baseline_name="SELECT of the checkpoint row p99",
                            baseline_value=base_p99,
                            target=f"< {TARGET_MS:.0f} ms" if at_target else "",
                            met=p99 < TARGET_MS if at_target else None,
                        ),
                    ]
        over = api_p50["10 KB", False]
        figures.append(
            Figure(
                name="lifecycle action via API p50 (recover 10 KB)",
                value=over,
                unit="ms",
                baseline_name="the service call p50",
                baseline_value=service_p50["10 KB", False],
                target=f"<= {API_OVER_SERVICE:g}x the service call",
                met=over <= API_OVER_SERVICE * service_p50["10 KB", False],
            )
        )
    report("recovery", figures, quick=options.quick, notes=f"{samples} recoveries per path")


if __name__ == "__main__":
    main()
