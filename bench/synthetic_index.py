"""A large synthetic index for query and page benchmarks: patients, studies, series and
instances as rows (no files), spread like a hospital archive over names, dates, modalities,
physicians and institutions. Deterministic for a given size.

    populate(n_studies, series_per_study=2, instances_per_series=5, batch=5000, progress=print)

Must run inside a configured Django (DJANGO_SETTINGS_MODULE set, django.setup() called).
"""

import datetime
import random

LAST_NAMES = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
              "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
              "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ",
              "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN",
              "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL",
              "CARTER", "ROBERTS", "DOE"]
FIRST_NAMES = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
               "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH",
               "CHARLES", "KAREN", "ANNA", "PAUL", "EMMA", "MARK", "LAURA"]
MODALITIES = ["CT", "CT", "CT", "MR", "MR", "CR", "DX", "US", "US", "MG", "NM", "PT", "XA"]
PHYSICIANS = [f"{last}^{first}" for last, first in zip(LAST_NAMES[::3], FIRST_NAMES)]
INSTITUTIONS = ["GENERAL HOSPITAL", "CITY CLINIC", "NORTH IMAGING", "SOUTH MEDICAL CENTER"]
UID_ROOT = "1.2.826.0.1.3680043.10.1137"
FIRST_DAY = datetime.date(2012, 1, 1)
DAYS = 15 * 365


def uid(*parts: int) -> str:
    return ".".join([UID_ROOT, *map(str, parts)])


def populate(n_studies: int, series_per_study: int = 2, instances_per_series: int = 5, batch: int = 5000,
             progress=lambda message: None) -> dict[str, int]:
    from pacsone.models import Instance, Patient, Series, StorageLocation, Study

    rng = random.Random(1137)
    location, _ = StorageLocation.objects.get_or_create(name="synthetic", defaults={"path": "/nonexistent"})
    n_patients = max(1, n_studies * 2 // 3)
    patients = []
    for p in range(n_patients):
        name = f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES)}"
        patients.append(Patient(patient_id=f"SYN{p:08d}", patient_name=name, patient_name_search=name,
                                birth_date=FIRST_DAY - datetime.timedelta(days=rng.randrange(365 * 90)),
                                sex=rng.choice("FM")))
    Patient.objects.bulk_create(patients, batch_size=batch)
    patient_pks = list(Patient.objects.filter(patient_id__startswith="SYN").order_by("pk").values_list("pk", flat=True))
    progress(f"{len(patient_pks)} patients")
    counts = {"patients": len(patient_pks), "studies": 0, "series": 0, "instances": 0}
    for start in range(0, n_studies, batch):
        studies, modalities = [], []
        for s in range(start, min(n_studies, start + batch)):
            modality = rng.choice(MODALITIES)
            modalities.append(modality)
            studies.append(Study(
                study_instance_uid=uid(1, s), patient_id=patient_pks[s % len(patient_pks)],
                study_date=FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS)),
                study_time=f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}00",
                accession_number=f"ACC{s:09d}", study_id=str(s % 10000), study_description=f"{modality} EXAM",
                referring_physician_name=rng.choice(PHYSICIANS), institution_name=rng.choice(INSTITUTIONS),
                modalities_in_study=modality, number_of_series=series_per_study,
                number_of_instances=series_per_study * instances_per_series, source_ae="SYNTH",
            ))
        Study.objects.bulk_create(studies, batch_size=batch)
        study_pks = dict(Study.objects.filter(study_instance_uid__in=[x.study_instance_uid for x in studies])
                         .values_list("study_instance_uid", "pk"))
        series = []
        for study, modality in zip(studies, modalities):
            for k in range(series_per_study):
                series.append(Series(series_instance_uid=study.study_instance_uid + f".{k + 1}",
                                     study_id=study_pks[study.study_instance_uid], modality=modality,
                                     series_number=k + 1, series_date=study.study_date,
                                     number_of_instances=instances_per_series))
        Series.objects.bulk_create(series, batch_size=batch)
        series_pks = dict(Series.objects.filter(series_instance_uid__in=[x.series_instance_uid for x in series])
                          .values_list("series_instance_uid", "pk"))
        instances = []
        for one in series:
            for i in range(instances_per_series):
                sop = one.series_instance_uid + f".{i + 1}"
                instances.append(Instance(
                    sop_instance_uid=sop, sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                    series_id=series_pks[one.series_instance_uid], instance_number=i + 1,
                    transfer_syntax_uid="1.2.840.10008.1.2.1", storage_location=location,
                    file_path=f"synthetic/{sop}", file_size=525_000, sha256="0" * 64,
                    header={"00080018": {"vr": "UI", "Value": [sop]}, "00200013": {"vr": "IS", "Value": [i + 1]}},
                    source_ae="SYNTH",
                ))
        Instance.objects.bulk_create(instances, batch_size=batch)
        counts["studies"] += len(studies)
        counts["series"] += len(series)
        counts["instances"] += len(instances)
        progress(f"{counts['studies']} studies, {counts['instances']} instances")
    return counts
