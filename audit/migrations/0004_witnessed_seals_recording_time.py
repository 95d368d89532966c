"""Recording time, Merkle roots and signed heads, DDL guards (docs/audit.md).

- ``audit_event.recorded_at``: stamped by the insert trigger (the inserting
  transaction's start) and part of the content hash from hash format 2; older events
  keep NULL and their format-1 hash, so they still verify.
- ``audit_seal.merkle_root``, ``signature``, ``key_id``: new seals carry them (seal
  format 2); older seals keep NULL.
- Event triggers refuse DROP, DETACH PARTITION and disabled guard triggers on the audit
  tables unless partition maintenance asked for it (``sergas.audit_ddl``). Creating an
  event trigger needs a superuser: a migration run by another role skips them with a
  notice, and ``verify_audit`` names them missing.

Adding nullable columns is a catalogue change: no row is rewritten, writers wait only
for the moment of each ALTER. The SQL is frozen here on purpose.
"""

from django.db import migrations, models

RECORDED_AT = r"""
ALTER TABLE audit_event ADD COLUMN recorded_at timestamptz;

CREATE FUNCTION audit_event_content_hash_v2(
    event_id uuid, ts timestamptz, session_id text, event_type text,
    actor text, action text, resource text, metadata jsonb, recorded_at timestamptz
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
        'metadata', metadata,
        'recorded_at', pg_catalog.to_char(
            pg_catalog.timezone('UTC', recorded_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text, 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION audit_event_stamp() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.xact_id := pg_catalog.pg_current_xact_id()::text::bigint;
    NEW.recorded_at := pg_catalog.now();
    NEW.content_hash := audit_event_content_hash_v2(
        NEW.event_id, NEW."timestamp", NEW.session_id, NEW.event_type,
        NEW.actor, NEW.action, NEW.resource, NEW.metadata, NEW.recorded_at);
    RETURN NEW;
END
$$;
"""

REVERSE_RECORDED_AT = r"""
SET LOCAL sergas.audit_ddl = 'maintenance';
CREATE OR REPLACE FUNCTION audit_event_stamp() RETURNS trigger
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
DROP FUNCTION audit_event_content_hash_v2(
    uuid, timestamptz, text, text, text, text, text, jsonb, timestamptz);
ALTER TABLE audit_event DROP COLUMN recorded_at;
"""

SEAL_COLUMNS = r"""
ALTER TABLE audit_seal
    ADD COLUMN merkle_root bytea,
    ADD COLUMN signature bytea,
    ADD COLUMN key_id varchar(16) NOT NULL DEFAULT '';
"""

REVERSE_SEAL_COLUMNS = r"""
SET LOCAL sergas.audit_ddl = 'maintenance';
ALTER TABLE audit_seal DROP COLUMN merkle_root, DROP COLUMN signature, DROP COLUMN key_id;
"""

# ENABLE ALWAYS: they fire with session_replication_role = replica too, the switch a
# superuser uses to silence ordinary triggers.
DDL_GUARDS = r"""
CREATE FUNCTION audit_ddl_allowed() RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.current_setting('sergas.audit_ddl', true) = 'maintenance' $$;

-- The schema of the application's audit tables: the one this migration created its
-- functions in (read from the catalogue, so it holds while a table is being dropped).
-- Copies of the tables elsewhere (a benchmark's scratch schema) are not the trail.
CREATE FUNCTION audit_schema() RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT pronamespace::regnamespace::text FROM pg_catalog.pg_proc
     WHERE proname = 'audit_schema' LIMIT 1
$$;

CREATE FUNCTION audit_guard_drop() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
    dropped record;
BEGIN
    IF audit_ddl_allowed() THEN
        RETURN;
    END IF;
    FOR dropped IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF dropped.object_identity ~ '(^|[. ])audit_(event|seal|archive|refuse_change|guard)'
           AND dropped.object_type IN ('table', 'trigger', 'function', 'index')
           AND (dropped.schema_name = audit_schema()
                OR dropped.object_identity LIKE '% on ' || audit_schema() || '.%') THEN
            RAISE EXCEPTION 'the audit trail cannot be dropped: % % refused',
                dropped.object_type, dropped.object_identity
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Only partition maintenance removes audit data, after archiving '
                             'and verifying a month past retention.';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION audit_guard_alter() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
    altered record;
    problem text;
BEGIN
    IF audit_ddl_allowed() THEN
        RETURN;
    END IF;
    FOR altered IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF altered.object_identity !~ '(^|\.)audit_(event|seal|archive)'
           OR altered.schema_name IS DISTINCT FROM audit_schema() THEN
            CONTINUE;
        END IF;
        -- A guard trigger disabled (or set to fire only on replicas).
        SELECT pg_catalog.format('trigger %s on %s is disabled', t.tgname, t.tgrelid::regclass)
          INTO problem
          FROM pg_catalog.pg_trigger AS t
          JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
         WHERE c.relnamespace::regnamespace::text = audit_schema()
           AND t.tgname IN ('audit_event_stamp', 'audit_event_append_only',
                            'audit_event_no_truncate', 'audit_seal_append_only',
                            'audit_seal_no_truncate', 'audit_archive_append_only',
                            'audit_archive_no_truncate')
           AND t.tgenabled NOT IN ('O', 'A')
         LIMIT 1;
        -- A partition of the trail detached from it.
        IF problem IS NULL THEN
            SELECT pg_catalog.format('table %s is no longer a partition of audit_event', c.oid::regclass)
              INTO problem
              FROM pg_catalog.pg_class AS c
             WHERE c.relname LIKE 'audit\_event\_%' AND c.relkind IN ('r', 'p')
               AND c.relnamespace::regnamespace::text = audit_schema()
               AND c.oid NOT IN (
                   SELECT relid FROM pg_catalog.pg_partition_tree(
                       pg_catalog.format('%I.audit_event', audit_schema())::regclass))
             LIMIT 1;
        END IF;
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'the audit trail''s guards cannot be removed: % (refused)', problem
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Only partition maintenance detaches a month, after archiving it.';
        END IF;
    END LOOP;
END
$$;

DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER audit_guard_drop ON sql_drop
            EXECUTE FUNCTION audit_guard_drop();
        ALTER EVENT TRIGGER audit_guard_drop ENABLE ALWAYS;
        CREATE EVENT TRIGGER audit_guard_alter ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE')
            EXECUTE FUNCTION audit_guard_alter();
        ALTER EVENT TRIGGER audit_guard_alter ENABLE ALWAYS;
    ELSE
        RAISE NOTICE 'audit DDL guards not installed: event triggers need a superuser '
                     '(run this migration as one; verify_audit reports them missing)';
    END IF;
END
$$;
"""

REVERSE_DDL_GUARDS = r"""
DROP EVENT TRIGGER IF EXISTS audit_guard_alter;
DROP EVENT TRIGGER IF EXISTS audit_guard_drop;
DROP FUNCTION audit_guard_alter();
DROP FUNCTION audit_guard_drop();
DROP FUNCTION audit_schema();
DROP FUNCTION audit_ddl_allowed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_integrity"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="recorded_at",
                    field=models.DateTimeField(blank=True, editable=False, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(RECORDED_AT, reverse_sql=REVERSE_RECORDED_AT),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="auditseal",
                    name="merkle_root",
                    field=models.BinaryField(null=True),
                ),
                migrations.AddField(
                    model_name="auditseal",
                    name="signature",
                    field=models.BinaryField(null=True),
                ),
                migrations.AddField(
                    model_name="auditseal",
                    name="key_id",
                    field=models.CharField(blank=True, default="", max_length=16),
                ),
            ],
            database_operations=[
                migrations.RunSQL(SEAL_COLUMNS, reverse_sql=REVERSE_SEAL_COLUMNS),
            ],
        ),
        migrations.CreateModel(
            name="WitnessStatus",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("published_seal", models.BigIntegerField(default=0)),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("last_success_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, default="")),
                ("failures", models.PositiveIntegerField(default=0)),
            ],
            options={
                "db_table": "audit_witness_status",
                "ordering": ["name"],
                "verbose_name_plural": "witness statuses",
            },
        ),
        migrations.RunSQL(DDL_GUARDS, reverse_sql=REVERSE_DDL_GUARDS),
    ]
