"""An example agent: drives one account-review session through the Sergas API.

    python docs/example_agent.py --url http://127.0.0.1:8000 --token "$SERGAS_TOKEN"

It creates a session, starts it, reviews the accounts in batches (reporting each tool
call and task through the event hooks, updating context and metrics, heartbeating and
checkpointing after every batch), completes the session, and prints its summary and the
length of its audit trail. A paused or cancelled session (staff, from the dashboard) makes
it stop at the next heartbeat. Only ``sergas_client`` (and httpx) is needed.
"""

import argparse
import os
import random
import sys
import time

from sergas_client import SergasAPIError, SergasClient, Session


class CrmTimeout(Exception):
    """What a flaky CRM call raises now and then."""


def review_account(account_id: str, rng: random.Random) -> int:
    """Stand-in for fetching the account and drafting recommendations."""
    time.sleep(rng.uniform(0.001, 0.005))
    if rng.random() < 0.15:
        raise CrmTimeout(f"CRM did not answer for {account_id}")
    return rng.randint(0, 3)


def run(
    client: SergasClient,
    *,
    accounts: list[str],
    batch_size: int = 4,
    orchestrator_id: str = "example-agent",
    seed: int = 7,
) -> Session:
    rng = random.Random(seed)
    batches = [accounts[i : i + batch_size] for i in range(0, len(accounts), batch_size)]
    session = client.create_session(
        orchestrator_id=orchestrator_id,
        session_type="on_demand",
        account_ids=accounts,
        owner_id="owner_01",
        context={"total_batches": len(batches)},
    )
    sid = session.session_id
    client.start(sid)
    recommendations = 0
    with client.recorder(sid) as hooks:
        for number, batch in enumerate(batches, start=1):
            if client.heartbeat(sid).should_stop:
                hooks.flush()
                return client.get_session(sid)
            processed, failed, times = [], [], []
            with hooks.task("review_batch", metadata={"batch": number}):
                for account in batch:
                    started = time.monotonic()
                    try:
                        with hooks.tool("crm.get_account", metadata={"account_id": account}):
                            recommendations += review_account(account, rng)
                        processed.append(account)
                    except CrmTimeout:
                        failed.append(account)
                    times.append(int((time.monotonic() - started) * 1000))
            hooks.flush()  # the batch's events are in the trail before its checkpoint
            client.increment_metrics(
                sid,
                counters={"api_call_count": len(batch), "error_count": len(failed)},
                processing_times_ms=times,
            )
            client.checkpoint(
                sid,
                context_changes={
                    "current_batch": number,
                    "processed_accounts": processed,
                    "failed_accounts": failed,
                    "recommendations_count": recommendations,
                },
            )
    return client.complete(sid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SERGAS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("SERGAS_TOKEN"), required=False)
    parser.add_argument("--accounts", type=int, default=12)
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("pass --token or set SERGAS_TOKEN (manage.py create_agent_token NAME)")
    accounts = [f"acct_{n:05d}" for n in range(args.accounts)]
    with SergasClient(args.url, args.token) as client:
        try:
            session = run(client, accounts=accounts)
        except SergasAPIError as exc:
            print(f"API error {exc.status_code} {exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        trail = list(client.audit_trail(session.session_id))
    print(f"session {session.session_id}: {session.status}")
    print(f"summary: {session.summary}")
    print(f"audit trail: {len(trail)} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
