"""Restoring a session's state to one of its checkpoints, inside PostgreSQL (call under
the session's row lock, from ``session_recover``)."""

from django.db import connection

from sessions.services._write import accounts_index

# A checkpoint of this release: copy the row's small fields (skipped when they are what
# the session holds), delete the progress, times and account lists newer than it through
# their (session, sequence) indexes. Returns the account list if it changed.
_RESTORE_SQL = """
WITH checkpoint AS (
    SELECT context, metrics, processed_count, failed_count
      FROM agent_session_checkpoint
     WHERE session_id = %(session)s AND sequence = %(sequence)s
), row_restored AS (
    UPDATE agent_session AS s
       SET context = c.context,
           metrics = c.metrics,
           owner_id = COALESCE(c.context ->> 'owner_id', ''),
           processed_count = c.processed_count,
           failed_count = c.failed_count
      FROM checkpoint AS c
     WHERE s.session_id = %(session)s
       AND (s.context IS DISTINCT FROM c.context OR s.metrics IS DISTINCT FROM c.metrics
            OR s.processed_count <> c.processed_count OR s.failed_count <> c.failed_count)
), progress_dropped AS (
    DELETE FROM agent_session_progress
     WHERE session_id = %(session)s AND sequence > %(sequence)s
), times_dropped AS (
    DELETE FROM agent_session_time
     WHERE session_id = %(session)s AND sequence > %(sequence)s
), lists_dropped AS (
    DELETE FROM agent_session_account_list
     WHERE session_id = %(session)s AND sequence > %(sequence)s
 RETURNING 1
)
SELECT (SELECT l.account_ids FROM agent_session_account_list AS l
         WHERE l.session_id = %(session)s AND l.sequence <= %(sequence)s
         ORDER BY l.sequence DESC LIMIT 1)
 WHERE EXISTS (SELECT 1 FROM lists_dropped)
"""

# A checkpoint of the previous release holds the whole state in its row: the session's
# rows are rebuilt from it, as of its sequence (cleared first, each its own statement).
_CLEAR_WHOLE_SQL = [
    f"DELETE FROM {table} WHERE session_id = %(session)s"
    for table in ("agent_session_progress", "agent_session_time", "agent_session_account_list")
]

_RESTORE_WHOLE_SQL = [
    """
    WITH checkpoint AS (
        SELECT context FROM agent_session_checkpoint
         WHERE session_id = %(session)s AND sequence = %(sequence)s
    ), processed AS (
        SELECT DISTINCT a FROM checkpoint AS c,
               jsonb_array_elements_text(c.context -> 'processed_accounts') AS a
    ), failed AS (
        SELECT a FROM checkpoint AS c,
               jsonb_array_elements_text(c.context -> 'failed_accounts') AS a
        EXCEPT SELECT a FROM processed
    )
    INSERT INTO agent_session_progress (session_id, sequence, processed, failed)
    SELECT %(session)s, %(sequence)s,
           ARRAY(SELECT a FROM processed ORDER BY a COLLATE "C"),
           ARRAY(SELECT a FROM failed ORDER BY a COLLATE "C")
    """,
    """
    INSERT INTO agent_session_time (session_id, sequence, times_ms)
    SELECT %(session)s, %(sequence)s,
           ARRAY(SELECT u.t::bigint FROM jsonb_array_elements_text(
                     c.metrics -> 'account_processing_times_ms') WITH ORDINALITY AS u(t, o)
                  ORDER BY u.o)
      FROM agent_session_checkpoint AS c
     WHERE c.session_id = %(session)s AND c.sequence = %(sequence)s
       AND jsonb_array_length(COALESCE(c.metrics -> 'account_processing_times_ms', '[]')) > 0
    """,
]

_RESTORE_WHOLE_ROW_SQL = """
WITH old AS (SELECT account_ids FROM agent_session WHERE session_id = %(session)s)
UPDATE agent_session AS s
   SET context = c.context - 'account_ids' - 'processed_accounts' - 'failed_accounts',
       metrics = c.metrics - 'account_processing_times_ms',
       account_ids = ARRAY(SELECT jsonb_array_elements_text(c.context -> 'account_ids')),
       owner_id = COALESCE(c.context ->> 'owner_id', ''),
       processed_count = (SELECT COALESCE(sum(cardinality(p.processed)), 0)
                            FROM agent_session_progress AS p WHERE p.session_id = s.session_id),
       failed_count = (SELECT COALESCE(sum(cardinality(p.failed)), 0)
                         FROM agent_session_progress AS p WHERE p.session_id = s.session_id)
  FROM agent_session_checkpoint AS c, old
 WHERE s.session_id = %(session)s AND c.session_id = s.session_id
   AND c.sequence = %(sequence)s
RETURNING s.account_ids IS DISTINCT FROM old.account_ids, s.account_ids
"""


def state_restore(session_id: str, sequence: int) -> None:
    """Make the session's context and metrics those of its checkpoint ``sequence``."""
    params = {"session": session_id, "sequence": sequence}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT context ? 'processed_accounts' FROM agent_session_checkpoint"
            " WHERE session_id = %(session)s AND sequence = %(sequence)s",
            params,
        )
        whole = cursor.fetchone()[0]
        if whole:
            for sql in (*_CLEAR_WHOLE_SQL, *_RESTORE_WHOLE_SQL):
                cursor.execute(sql, params)
            cursor.execute(_RESTORE_WHOLE_ROW_SQL, params)
            changed, account_ids = cursor.fetchone()
            if changed:
                accounts_index(session_id, account_ids)
            return
        cursor.execute(_RESTORE_SQL, params)
        restored = cursor.fetchone()
    if restored is not None and restored[0] is not None:  # the accounts changed since
        account_ids = restored[0]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE agent_session SET account_ids = %s WHERE session_id = %s",
                [account_ids, session_id],
            )
        accounts_index(session_id, account_ids)
