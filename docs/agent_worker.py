"""An example queue agent: takes scheduled account reviews from a Sergas work queue.

    python docs/agent_worker.py --url http://127.0.0.1:8000 --token "$SERGAS_TOKEN" \\
        --queue crm-reviewers

A review whose executor is ``queue:crm-reviewers`` hands its runs' batches out on that
queue, to tokens with the ``work`` scope (manage.py create_agent_token NAME --scopes work).
This agent leases a batch, reviews its accounts (a deterministic stand-in that takes
--batch-seconds per batch), heartbeats meanwhile, and completes the batch with one result
per account. A paused or cancelled run reaches it through the heartbeat: it drops the
batch. SIGTERM or Ctrl-C stops it gracefully: a batch under way is given back unfinished.
It prints one line per event, flushed:

    leased batch=<id> token=<lease_token> accounts=<n> attempt=<k>
    completed batch=<id> results=<n>
    lost batch=<id> reason=<reason>
    released batch=<id>
    failed batch=<id>
    stopped

Only ``sergas_client`` (and httpx) is needed.
"""

import argparse
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal

from sergas_client import (
    AccountResult,
    BatchState,
    CompletedBatch,
    Lease,
    Priority,
    Recommendation,
    SergasAPIError,
    SergasClient,
    Worker,
)

# What the stand-in reviewer may recommend: (kind, title, priority).
SUGGESTIONS: tuple[tuple[str, str, Priority], ...] = (
    ("upsell", "Offer the next tier", "high"),
    ("renewal_risk", "Renewal at risk: call the sponsor", "critical"),
    ("follow_up", "Follow up on the open opportunity", "medium"),
    ("data_quality", "Fill in the missing industry", "low"),
)


def review_account(account_id: str, *, duration_ms: int = 0) -> AccountResult:
    """Stand-in for an LLM reviewing the account: the same account always gets the same
    0-2 recommendations and token counts."""
    digest = hashlib.sha256(account_id.encode()).digest()
    first = digest[1] % len(SUGGESTIONS)
    recommendations = []
    for n in range(digest[0] % 3):
        kind, title, priority = SUGGESTIONS[(first + n) % len(SUGGESTIONS)]
        recommendations.append(
            Recommendation(
                kind=kind,
                title=title,
                detail=f"Suggested for {account_id}.",
                priority=priority,
                confidence=round(0.5 + digest[2 + n] / 510, 2),
            )
        )
    input_tokens, output_tokens = 800 + 4 * digest[4], 100 + digest[5]
    cost = Decimal(input_tokens) * Decimal("0.000003") + Decimal(output_tokens) * Decimal(
        "0.000015"
    )
    return AccountResult.reviewed(
        account_id,
        recommendations,
        duration_ms=duration_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
    )


def batch_reviewer(batch_seconds: float) -> Callable[[Lease], list[AccountResult] | None]:
    """A handler that spends ``batch_seconds`` on a batch, spread over its accounts, and
    stops early (None: the batch is given back) when the lease says so."""

    def review_batch(lease: Lease) -> list[AccountResult] | None:
        per_account = batch_seconds / max(1, len(lease.account_ids))
        results = []
        for account_id in lease.account_ids:
            started = time.monotonic()
            if lease.should_stop or lease.wait(per_account):
                return None
            duration_ms = int((time.monotonic() - started) * 1000)
            results.append(review_account(account_id, duration_ms=duration_ms))
        return results

    return review_batch


def say(line: str) -> None:
    # One write per line: the worker's threads log to stderr, which may share a file.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class PrintingWorker(Worker):
    """A ``Worker`` that prints each batch's events on stdout."""

    def on_leased(self, lease: Lease) -> None:
        say(
            f"leased batch={lease.batch_id} token={lease.lease_token} "
            f"accounts={len(lease.account_ids)} attempt={lease.attempt}"
        )

    def on_completed(self, lease: Lease, answer: CompletedBatch) -> None:
        say(f"completed batch={lease.batch_id} results={answer.results}")

    def on_lost(self, lease: Lease, reason: str) -> None:
        say(f"lost batch={lease.batch_id} reason={reason}")

    def on_released(self, lease: Lease, state: BatchState) -> None:
        say(f"released batch={lease.batch_id}")

    def on_failed(self, lease: Lease, error: str, state: BatchState) -> None:
        say(f"failed batch={lease.batch_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SERGAS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("SERGAS_TOKEN"))
    parser.add_argument("--queue", required=True, help="The work queue to take batches from.")
    parser.add_argument(
        "--wait-seconds", type=int, default=20, help="Long poll of each claim (0-30)."
    )
    parser.add_argument(
        "--batch-seconds", type=float, default=0.0, help="How long one batch takes."
    )
    parser.add_argument("--holder", help="Shown to staff as the lease's holder (host:pid).")
    parser.add_argument("--max-batches", type=int, help="Stop after this many batches.")
    parser.add_argument(
        "--heartbeat-seconds", type=float, help="Heartbeat interval (default: as the API says)."
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("pass --token or set SERGAS_TOKEN (manage.py create_agent_token NAME)")
    if not 0 <= args.wait_seconds <= 30:
        parser.error("--wait-seconds must be between 0 and 30")
    if args.heartbeat_seconds is not None and args.heartbeat_seconds <= 0:
        parser.error("--heartbeat-seconds must be positive")
    try:
        with SergasClient(args.url, args.token) as client:
            worker = PrintingWorker(
                client,
                args.queue,
                batch_reviewer(args.batch_seconds),
                wait_seconds=args.wait_seconds,
                holder=args.holder,
                heartbeat_seconds=args.heartbeat_seconds,
            )
            worker.run(max_batches=args.max_batches)
    except SergasAPIError as exc:
        print(f"API error {exc.status_code} {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        say("stopped")
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    sys.exit(main())
