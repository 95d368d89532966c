"""Session state that costs what changed: account progress, processing times and account
list changes in rows of their own; the session and checkpoint rows keep the small fields.

Schema only, so it applies quickly to a populated database: new tables (empty), two
counters with a constant default on the session and checkpoint tables (no rewrite), and
the JSON fields renamed in Django's state only (their columns keep their names). Rows of
the previous release are not rewritten: they keep their whole context and metrics, are
read as they are, a session's next write moves its sets and times out of its row, and a
checkpoint of the previous release is restored whole (sessions/services/_restore.py).
"""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models

ACCOUNT_SET_KEYS = ("account_ids", "processed_accounts", "failed_accounts")


def _context_gin(column: str) -> django.contrib.postgres.indexes.GinIndex:
    return django.contrib.postgres.indexes.GinIndex(
        django.contrib.postgres.indexes.OpClass(
            models.Func(
                models.F(column),
                *(models.Value(key) for key in ACCOUNT_SET_KEYS),
                arg_joiner=" - ",
                template="(%(expressions)s)",
                output_field=models.JSONField(),
            ),
            name="jsonb_path_ops",
        ),
        name="agent_session_context_gin",
    )


def _renamed(model: str, name: str, column: str, **options: object) -> list:
    return [
        migrations.RenameField(model_name=model, old_name=name, new_name=column),
        migrations.AlterField(
            model_name=model, name=column, field=models.JSONField(db_column=name, **options)
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [("agent_sessions", "0005_agentsession_created_by")]

    operations = [
        # The same columns under new field names (the model composes ``context``/``metrics``).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="agentsession", name="agent_session_context_gin"),
                *_renamed("agentsession", "context", "stored_context", default=dict),
                *_renamed("agentsession", "metrics", "stored_metrics", default=dict),
                *_renamed("sessioncheckpoint", "context", "stored_context"),
                *_renamed("sessioncheckpoint", "metrics", "stored_metrics"),
                migrations.AddIndex(
                    model_name="agentsession", index=_context_gin("stored_context")
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="agentsession",
            name="processed_count",
            # A database default: processes of the previous release insert without it.
            field=models.PositiveIntegerField(default=0, db_default=0),
        ),
        migrations.AddField(
            model_name="agentsession",
            name="failed_count",
            # A database default: processes of the previous release insert without it.
            field=models.PositiveIntegerField(default=0, db_default=0),
        ),
        migrations.AddField(
            model_name="sessioncheckpoint",
            name="processed_count",
            # A database default: processes of the previous release insert without it.
            field=models.PositiveIntegerField(default=0, db_default=0),
        ),
        migrations.AddField(
            model_name="sessioncheckpoint",
            name="failed_count",
            # A database default: processes of the previous release insert without it.
            field=models.PositiveIntegerField(default=0, db_default=0),
        ),
        migrations.CreateModel(
            name="SessionProgress",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("sequence", models.PositiveIntegerField()),
                (
                    "processed",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), default=list, size=None
                    ),
                ),
                (
                    "failed",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), default=list, size=None
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="agent_sessions.agentsession",
                    ),
                ),
            ],
            options={
                "db_table": "agent_session_progress",
                "indexes": [
                    models.Index(
                        fields=["session", "sequence"], name="agent_session_progress_seq_idx"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="SessionTimes",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("sequence", models.PositiveIntegerField()),
                (
                    "times_ms",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="agent_sessions.agentsession",
                    ),
                ),
            ],
            options={
                "db_table": "agent_session_time",
                "indexes": [
                    models.Index(fields=["session", "sequence"], name="agent_session_time_seq_idx")
                ],
            },
        ),
        migrations.CreateModel(
            name="SessionAccountList",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("sequence", models.PositiveIntegerField()),
                (
                    "account_ids",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), size=None
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="agent_sessions.agentsession",
                    ),
                ),
            ],
            options={
                "db_table": "agent_session_account_list",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("session", "sequence"), name="agent_session_account_list_uniq"
                    )
                ],
            },
        ),
    ]
