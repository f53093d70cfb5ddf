"""Writing many saved rows at once: one `UPDATE … FROM unnest(…)` of typed arrays on PostgreSQL.

Django's bulk_update builds a CASE per row and field in Python (about 2 ms a row): more than the whole migration
of an enrollment, and enough to miss the materializer's 2,000 occurrences a second. The sweeps, the version
migration and the one writer of task versions write their batches through `rows_update` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Field, Model


def _unnestable(field: Field) -> bool:  # type: ignore[type-arg]
    # Django's own test before it inserts through unnest (arrays and geometries cannot travel that way).
    return (field.target_field if field.is_relation else field).get_internal_type() in connection.data_types  # type: ignore[attr-defined]


def rows_update(objects: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` (names, foreign keys by their field name) of each of `objects`, saved rows of one model whose
    attributes hold the new values, in one statement. auto_now fields are written as the objects hold them: set
    them first, as save() would. On other databases, or with a field that cannot travel as a typed array (an
    ArrayField), Django's bulk_update does it."""
    if not objects:
        return
    model = type(objects[0])
    model_fields = [model._meta.get_field(name) for name in fields]
    if connection.vendor != "postgresql" or not all(_unnestable(f) for f in model_fields):  # type: ignore[arg-type]
        model._default_manager.bulk_update(objects, list(fields))
        return
    pk = model._meta.pk
    assert pk is not None
    columns = [f.column for f in model_fields]  # type: ignore[union-attr]
    types = [f.db_type(connection).split("(")[0] for f in model_fields]  # type: ignore[union-attr]
    arrays = [[f.get_db_prep_save(getattr(o, f.attname), connection) for o in objects] for f in model_fields]  # type: ignore[union-attr]
    assignments = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    arrays_sql = ", ".join(f"%s::{db_type}[]" for db_type in types)
    names = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" AS t SET {assignments} '  # noqa: S608 - names from the model
            f'FROM unnest(%s::{pk.db_type(connection)}[], {arrays_sql}) AS v("{pk.column}", {names}) '
            f'WHERE t."{pk.column}" = v."{pk.column}"',
            [[o.pk for o in objects], *arrays],
        )
