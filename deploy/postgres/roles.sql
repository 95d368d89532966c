-- The two database roles of a production deployment (docs/deployment.md, "Roles").
-- Run once, as a superuser:  psql -d sergas -f deploy/postgres/roles.sql
-- then give each a password:  \password sergas_owner  and  \password sergas_app
--
-- sergas_owner owns the tables: `manage.py migrate` (as a superuser, or this role made
-- one for the migration: the audit trail's DDL guards are event triggers), and the daily
-- audit partition maintenance (MAINTENANCE_QUEUE), which creates, detaches and drops
-- partitions.
-- sergas_app is everything else: web, workers, beat. It reads and appends to the audit
-- trail and cannot change or remove a row of it, nor run DDL.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sergas_owner') THEN
        CREATE ROLE sergas_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sergas_app') THEN
        CREATE ROLE sergas_app LOGIN;
    END IF;
END
$$;

-- Sessions of other roles and databases in pg_stat_activity: the sealer leaves out of
-- its horizon the transactions running in other databases (else seals wait for them),
-- and /metrics shows which beat leads and from where.
GRANT pg_read_all_stats TO sergas_app;
