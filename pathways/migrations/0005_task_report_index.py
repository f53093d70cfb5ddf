# Adherence reports read due_at, scope and status columns of every task in a window: a covering index lets
# them scan the index alone (index-only, parallel) instead of the wide task rows. It replaces 0004's plain
# due_at index, which it serves as well (docs/benchmarks.md, "Adherence").

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pathways", "0004_task_due_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="pathways_task_due",
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                fields=["due_at"],
                include=(
                    "id",
                    "enrollment",
                    "prong",
                    "role",
                    "status",
                    "completed_at",
                    "started_at",
                    "template",
                    "escalation_level",
                ),
                name="pathways_task_report",
            ),
        ),
    ]
