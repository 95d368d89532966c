"""An agent, as its own OS process, that asks staff before it acts (the browser test of
approvals runs it): it starts a session, asks whether to send an email, long-polls for
the answer, acts on it and completes the session.

    python tests/dashboard/approval_agent.py URL TOKEN

Prints what it does; exits 0 once it acted on an approval, 1 if it was turned down.
"""

import sys

from sergas_client import SergasClient


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    url, token = argv[1], argv[2]
    with SergasClient(url, token) as api:
        session = api.create_session(orchestrator_id="renewals", account_ids=["acct_acme"])
        api.start(session.session_id)
        asked = api.request_approval(
            session.session_id,
            question="Send the renewal offer to ACME?",
            options=["send", "hold"],
            payload={"account": "acct_acme", "email": "Dear ACME, we propose a 5% discount."},
        )
        _say(f"asked {asked.approval_id} in {session.session_id}")
        answer = asked
        while answer.pending:
            answer = api.wait_for_approval(asked.approval_id, timeout=30)
            api.heartbeat(session.session_id)
        _say(f"answer {answer.status} {answer.decision} comment={answer.comment!r}")
        if answer.decision == "send":
            api.update_context(session.session_id, {"metadata": {"email": "sent"}})
            _say("email sent")
        api.complete(session.session_id)
        _say("session completed")
    return 0 if answer.approved else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
