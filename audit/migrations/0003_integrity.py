"""Integrity in the database: content hashes, transaction ids, append-only guards.

Core PostgreSQL only (sha256(bytea) since 11, pg_current_xact_id() since 13, BRIN): the
embedded PostgreSQL ships no contrib extension. The SQL is frozen here on purpose: a
migration must keep meaning what it meant when it ran. docs/audit.md explains the model.
"""

from django.db import migrations

# The canonical form of audit.canonical.event_canonical_text, hashed. Core functions are
# schema-qualified so nothing on a search path can stand in for them (a SET search_path
# clause would do the same but costs every insert a GUC save and restore).
CONTENT_HASH_FUNCTION = r"""
CREATE FUNCTION audit_event_content_hash(
    event_id uuid, ts timestamptz, session_id text, event_type text,
    actor text, action text, resource text, metadata jsonb
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_object(
        'event_id', event_id::text,
        'timestamp', pg_catalog.to_char(
            pg_catalog.timezone('UTC', ts), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'session_id', session_id,
        'event_type', event_type,
        'actor', actor,
        'action', action,
        'resource', resource,
        'metadata', metadata
    )::text, 'UTF8'))
$$;
"""

# Whatever the insert path (ORM, bulk insert, ON CONFLICT, COPY), the row gets its hash
# and the id of the inserting top-level transaction; client-supplied values are ignored.
STAMP_TRIGGER = r"""
CREATE FUNCTION audit_event_stamp() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.xact_id := pg_catalog.pg_current_xact_id()::text::bigint;
    NEW.content_hash := audit_event_content_hash(
        NEW.event_id, NEW."timestamp", NEW.session_id, NEW.event_type,
        NEW.actor, NEW.action, NEW.resource, NEW.metadata);
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_event_stamp BEFORE INSERT ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_stamp();
"""

# Row triggers on a partitioned table are cloned to every partition, present and future.
# TRUNCATE triggers are not: audit_guard_partitions() adds one to every partition that
# lacks it; migrations and partition maintenance call it.
GUARDS = r"""
CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only partition maintenance removes audit data: it archives, verifies, '
                     'then detaches and drops a whole partition past retention.';
END
$$;

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_seal
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_archive_append_only BEFORE UPDATE OR DELETE ON audit_archive
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_archive_no_truncate BEFORE TRUNCATE ON audit_archive
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION audit_guard_partitions() RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    relation regclass;
    added integer := 0;
BEGIN
    FOR relation IN
        SELECT tree.relid FROM pg_partition_tree('audit_event'::regclass) AS tree
         WHERE NOT EXISTS (
               SELECT 1 FROM pg_trigger
                WHERE tgrelid = tree.relid AND tgname = 'audit_event_no_truncate')
    LOOP
        EXECUTE format(
            'CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', relation);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$;
SELECT audit_guard_partitions();
"""

REVERSE_GUARDS = r"""
DO $$
DECLARE relation regclass;
BEGIN
    FOR relation IN SELECT tgrelid::regclass FROM pg_trigger
                     WHERE tgname = 'audit_event_no_truncate' AND tgparentid = 0
    LOOP
        EXECUTE format('DROP TRIGGER audit_event_no_truncate ON %s', relation);
    END LOOP;
END
$$;
DROP FUNCTION audit_guard_partitions();
DROP TRIGGER audit_archive_no_truncate ON audit_archive;
DROP TRIGGER audit_archive_append_only ON audit_archive;
DROP TRIGGER audit_seal_no_truncate ON audit_seal;
DROP TRIGGER audit_seal_append_only ON audit_seal;
DROP TRIGGER audit_event_append_only ON audit_event;
DROP FUNCTION audit_refuse_change();
"""

# Rows from before this migration get their hash, and pseudo transaction ids: groups
# of 10,000 in (timestamp, event_id) order, all below this migration's own id (so every
# one of them is "finished" for the sealer). One transaction's rows always share a seal,
# so a single id for all of them would make one seal listing every older event.
COLUMNS = r"""
ALTER TABLE audit_event ADD COLUMN content_hash bytea, ADD COLUMN xact_id bigint;
WITH numbered AS (
    SELECT event_id, "timestamp",
           (row_number() OVER (ORDER BY "timestamp", event_id) - 1) / 10000 AS batch
      FROM audit_event
)
UPDATE audit_event AS event SET
    xact_id = LEAST(numbered.batch, pg_current_xact_id()::text::bigint - 1),
    content_hash = audit_event_content_hash(
        event.event_id, event."timestamp", event.session_id, event.event_type,
        event.actor, event.action, event.resource, event.metadata)
  FROM numbered
 WHERE event.event_id = numbered.event_id AND event."timestamp" = numbered."timestamp";
ALTER TABLE audit_event
    ALTER COLUMN content_hash SET NOT NULL,
    ALTER COLUMN xact_id SET NOT NULL;
-- Sealing and verification read rows by transaction range. Rows arrive roughly in
-- transaction order, so a BRIN index finds them for almost no write cost.
CREATE INDEX audit_event_xact_brin ON audit_event USING brin (xact_id)
    WITH (autosummarize = on);
"""

REVERSE_COLUMNS = r"""
DROP INDEX audit_event_xact_brin;
ALTER TABLE audit_event DROP COLUMN content_hash, DROP COLUMN xact_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_seals_archives_time_index"),
    ]

    operations = [
        migrations.RunSQL(
            CONTENT_HASH_FUNCTION,
            reverse_sql="DROP FUNCTION audit_event_content_hash("
            "uuid, timestamptz, text, text, text, text, text, jsonb);",
        ),
        migrations.RunSQL(COLUMNS, reverse_sql=REVERSE_COLUMNS),
        migrations.RunSQL(
            STAMP_TRIGGER,
            reverse_sql="DROP TRIGGER audit_event_stamp ON audit_event;"
            " DROP FUNCTION audit_event_stamp();",
        ),
        migrations.RunSQL(GUARDS, reverse_sql=REVERSE_GUARDS),
    ]
