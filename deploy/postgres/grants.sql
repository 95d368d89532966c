-- What sergas_app may do (docs/deployment.md, "Roles"). Run as the tables' owner or a
-- superuser after every `manage.py migrate` (a release may add tables):
--   psql -d sergas -f deploy/postgres/grants.sql
GRANT USAGE ON SCHEMA public TO sergas_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sergas_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO sergas_app;

-- The audit trail: read and append, through the partitioned table only. (Its triggers
-- refuse changes from anyone; this keeps the rights from being there at all.)
REVOKE UPDATE, DELETE, TRUNCATE ON audit_event, audit_seal, audit_archive FROM sergas_app;
DO $$
DECLARE
    partition regclass;
BEGIN
    FOR partition IN
        SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_event'::regclass
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM sergas_app', partition);
    END LOOP;
END
$$;
-- The dashboard counts the rows waiting in the default partition.
GRANT SELECT ON audit_event_default TO sergas_app;
