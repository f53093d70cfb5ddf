# Adherence reports select tasks by due time whatever their status (docs/benchmarks.md, "Adherence and
# dashboard"); the existing due-time index covers open tasks only.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pathways", "0003_audit"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="task",
            index=models.Index(fields=["due_at"], name="pathways_task_due"),
        ),
    ]
