"""The whole context and metrics of a session or a checkpoint, composed from the row's
small JSON and the rows beside it (docs/architecture.md, "Session state").

Plain SQL over the tables, no models: the models' ``context``/``metrics`` properties
read through here, and ``sessions.selectors`` (which imports the models) re-exports the
reads.
"""

import json
from typing import Any

from django.db import connection

from sessions.state import without_stale_keys

_SESSION_STATE_SQL = """
SELECT s.context, s.metrics, s.account_ids,
       ARRAY(SELECT x.a FROM (SELECT DISTINCT a FROM agent_session_progress AS p,
                     unnest(p.processed) AS a WHERE p.session_id = s.session_id) AS x
              ORDER BY x.a COLLATE "C"),
       ARRAY(SELECT x.a FROM (
                  SELECT a FROM agent_session_progress AS p, unnest(p.failed) AS a
                   WHERE p.session_id = s.session_id
                  EXCEPT
                  SELECT a FROM agent_session_progress AS p, unnest(p.processed) AS a
                   WHERE p.session_id = s.session_id) AS x
              ORDER BY x.a COLLATE "C"),
       ARRAY(SELECT u.t FROM agent_session_time AS r, unnest(r.times_ms) WITH ORDINALITY AS u(t, o)
              WHERE r.session_id = s.session_id ORDER BY r.id, u.o)
  FROM agent_session AS s
 WHERE s.session_id = %(session)s
"""

# As of checkpoint %(sequence)s: the changes newer than it are left out.
_CHECKPOINT_STATE_SQL = """
SELECT c.context, c.metrics,
       COALESCE((SELECT l.account_ids FROM agent_session_account_list AS l
                  WHERE l.session_id = c.session_id AND l.sequence <= c.sequence
                  ORDER BY l.sequence DESC LIMIT 1), s.account_ids),
       ARRAY(SELECT x.a FROM (SELECT DISTINCT a FROM agent_session_progress AS p,
                     unnest(p.processed) AS a
                      WHERE p.session_id = c.session_id AND p.sequence <= c.sequence) AS x
              ORDER BY x.a COLLATE "C"),
       ARRAY(SELECT x.a FROM (
                  SELECT a FROM agent_session_progress AS p, unnest(p.failed) AS a
                   WHERE p.session_id = c.session_id AND p.sequence <= c.sequence
                  EXCEPT
                  SELECT a FROM agent_session_progress AS p, unnest(p.processed) AS a
                   WHERE p.session_id = c.session_id AND p.sequence <= c.sequence) AS x
              ORDER BY x.a COLLATE "C"),
       ARRAY(SELECT u.t FROM agent_session_time AS r, unnest(r.times_ms) WITH ORDINALITY AS u(t, o)
              WHERE r.session_id = c.session_id AND r.sequence <= c.sequence
              ORDER BY r.id, u.o)
  FROM agent_session_checkpoint AS c JOIN agent_session AS s ON s.session_id = c.session_id
 WHERE c.session_id = %(session)s AND c.sequence = %(sequence)s
"""

State = tuple[dict[str, Any], dict[str, Any]]


def session_state_read(session_id: str) -> State:
    """The session's whole context and metrics, as the API shows them: the row's small
    fields with the account list, the account sets and the processing times composed in.
    ``({}, {})`` if there is no such session."""
    return _state_read(_SESSION_STATE_SQL, {"session": session_id})


def checkpoint_state_read(session_id: str, sequence: int) -> State:
    """A checkpoint's whole context and metrics, as recovery would restore them."""
    return _state_read(_CHECKPOINT_STATE_SQL, {"session": session_id, "sequence": sequence})


def _state_read(sql: str, params: dict[str, Any]) -> State:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return {}, {}
    context, metrics, *rest = row
    # Django's connection hands JSON out as text (JSONField parses it).
    return state_compose(json.loads(context), json.loads(metrics), *rest)


def state_compose(
    context: dict[str, Any],
    metrics: dict[str, Any],
    account_ids: list[str],
    processed: list[str],
    failed: list[str],
    times: list[int],
) -> State:
    """The whole context and metrics from a row's JSON and the rows beside it. A row the
    previous release wrote still carries its account sets and times: they count too."""
    context, metrics = without_stale_keys(context), without_stale_keys(metrics)
    old_processed = context.get("processed_accounts")
    old_failed = context.get("failed_accounts")
    if old_processed or old_failed:
        done = set(processed) | set(old_processed or ())
        processed = sorted(done)
        failed = sorted((set(failed) | set(old_failed or ())) - done)
    context["processed_accounts"] = processed
    context["failed_accounts"] = failed
    context.setdefault("account_ids", account_ids)
    old_times = metrics.get("account_processing_times_ms") or []
    metrics["account_processing_times_ms"] = [*old_times, *times]
    return _jsonb_order(context), _jsonb_order(metrics)


def _jsonb_order(value: dict[str, Any]) -> dict[str, Any]:
    """Keys in the order a JSONB object keeps them (shorter first, then bytewise), so a
    composed object reads exactly like the one the row used to store whole."""
    return dict(sorted(value.items(), key=lambda item: (len(item[0].encode()), item[0].encode())))
