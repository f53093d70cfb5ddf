from django.db import migrations

# The adherence report groups tasks by (prong or role, lateness in whole minutes) — see
# pathways/selectors/adherence.py, _report. Without statistics on that expression PostgreSQL guesses one group
# per task and sorts a million rows; with them it knows there are a few thousand and hashes them in parallel
# (about 3x faster at 1,000,000 tasks). The expression must be the one Django generates for the query, token
# for token: tests/reports/test_report_statistics.py checks that the planner uses it.
PG_FORWARD = """
CREATE STATISTICS pathways_task_report_groups (ndistinct) ON prong, role, (
    CASE WHEN status::text = 'completed'
    THEN GREATEST(ceiling(date_part('epoch', completed_at - due_at) / 60.0::double precision), 0.0::double precision)
    ELSE NULL::double precision END
) FROM pathways_task;
ANALYZE pathways_task;
"""
PG_REVERSE = "DROP STATISTICS IF EXISTS pathways_task_report_groups;"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("pathways", "0006_first_action"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(PG_FORWARD), _on_postgresql(PG_REVERSE)),
    ]
