"""Study and series counts are now kept by the ingest transaction (pacsone/study_counts.py)
instead of a task queued after the association; recount them once from the rows, so that what
a lagging or lost task left behind is right from now on."""

from django.db import migrations
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce


def recount(apps, schema_editor):
    Study = apps.get_model("pacsone", "Study")
    Series = apps.get_model("pacsone", "Series")
    Instance = apps.get_model("pacsone", "Instance")

    def per(model, path, owner, **aggregates):
        return model.objects.filter(**{path: OuterRef("pk")}).order_by().values(owner).annotate(**aggregates)

    in_series = per(Instance, "series", "series", n=Count("pk"))
    Series.objects.update(number_of_instances=Coalesce(Subquery(in_series.values("n")), Value(0)))
    in_study = per(Instance, "series__study", "series__study", n=Count("pk"), size=Sum("file_size"))
    series_of_study = per(Series, "study", "study", n=Count("pk"))
    Study.objects.update(
        number_of_instances=Coalesce(Subquery(in_study.values("n")), Value(0)),
        size_bytes=Coalesce(Subquery(in_study.values("size")), Value(0)),
        number_of_series=Coalesce(Subquery(series_of_study.values("n")), Value(0)),
    )
    modalities: dict[int, set[str]] = {}
    for study_pk, modality in Series.objects.values_list("study_id", "modality").iterator():
        modalities.setdefault(study_pk, set()).add(modality)
    for study_pk, stored in Study.objects.values_list("pk", "modalities_in_study").iterator():
        wanted = "\\".join(sorted(modalities.get(study_pk, set()) - {""}))[:64]
        if wanted != stored:
            Study.objects.filter(pk=study_pk).update(modalities_in_study=wanted)


class Migration(migrations.Migration):
    dependencies = [("pacsone", "0005_remote_ae_access")]

    operations = [migrations.RunPython(recount, migrations.RunPython.noop)]
