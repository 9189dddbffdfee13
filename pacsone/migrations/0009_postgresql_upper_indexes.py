from django.db import migrations

# PostgreSQL: Django's iexact/istartswith compare UPPER("column"::text), which no ordinary index
# serves. The visibility rule (referring/reading physician, institution) and the searches'
# case-insensitive fields use these three columns, so each gets an index on that very expression;
# text_pattern_ops lets it answer `LIKE 'ABC%'` as well as `=`, whatever the database collation.
# SQLite has its NOCASE indexes (0004); MariaDB/MySQL's case-insensitive collation serves already.
UPPER_INDEXES = [
    ("study_referring_upper", "pacsone_study", "referring_physician_name"),
    ("study_reading_upper", "pacsone_study", "reading_physician_name"),
    ("study_institution_upper", "pacsone_study", "institution_name"),
]


def create_upper_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in UPPER_INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" (UPPER("{column}"::text) text_pattern_ops)')


def drop_upper_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in UPPER_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ("pacsone", "0008_study_trash"),
    ]

    operations = [
        migrations.RunPython(create_upper_indexes, drop_upper_indexes),
    ]
