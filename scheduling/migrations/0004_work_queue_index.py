"""The work queue's index and the validation of 0003's constraints, without blocking
writers: the index is built CONCURRENTLY (so outside a transaction), and VALIDATE
CONSTRAINT only takes a lock that lets rows be written meanwhile."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("scheduling", "0003_work_queue_and_results"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="runbatch",
            index=models.Index(
                condition=models.Q(("status", "pending"), models.Q(("queue", ""), _negated=True)),
                fields=["queue", "rank", "nominal_time", "execution", "index"],
                name="schedule_run_batch_queue_idx",
            ),
        ),
        migrations.RunSQL(
            sql=[
                "ALTER TABLE schedule_run_batch VALIDATE CONSTRAINT schedule_run_batch_status_valid",
                "ALTER TABLE scheduled_review VALIDATE CONSTRAINT scheduled_review_executor_valid",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
