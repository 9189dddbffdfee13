"""The people and studies of the access tests (seed 004's user categories and visibility cases).

- anonymous: not logged in
- physician: Jane Smith, a referring physician with no privileges
- power: a power user (View + Modify + Mark Study)
- sysadmin: a system administrator (System Administration, Monitor; no View)
- root: the built-in administrator
and, for the full matrix (EVERY_ROLE):
- member: a member of the group whose description is the "own" study's institution
- outsider: a user with no privileges whom no study names
- modify_only: Modify and nothing else (no View)

- public: a public study of a public patient
- own: a private study whose Referring Physician is Smith^Jane, from the members' institution
- other: a private study that names nobody Jane may be
"""

from dataclasses import dataclass

from accounts.models import User, UserGroup
from pacsone.models import Patient, Series, Study

PASSWORD = "correct-horse-battery-9"
ROLES = ("anonymous", "physician", "power", "sysadmin", "root")
EVERY_ROLE = ("root", "power", "physician", "member", "outsider", "modify_only", "sysadmin")
INSTITUTION = "GENERAL HOSPITAL"


def make_user(username: str, privileges=(), **fields) -> User:
    if username == "root":
        return User.objects.create_superuser("root", password=PASSWORD)
    return User.objects.create_user(username, password=PASSWORD, privileges=list(privileges), **fields)


def make_study(uid: str, patient_id: str, *, public=False, referring="", reading="", institution="",
               patient_name="DOE^JOHN", modality="CT", study_date=None, accession="") -> Study:
    patient, _ = Patient.objects.get_or_create(
        patient_id=patient_id,
        defaults={"patient_name": patient_name, "patient_name_search": patient_name.upper(), "public": public},
    )
    study = Study.objects.create(
        study_instance_uid=uid, patient=patient, public=public, referring_physician_name=referring,
        reading_physician_name=reading, institution_name=institution, study_date=study_date,
        accession_number=accession,
    )
    Series.objects.create(series_instance_uid=uid + ".1", study=study, modality=modality)
    return study


@dataclass
class World:
    users: dict[str, User | None]
    studies: dict[str, Study]


def make_world() -> World:
    users = {
        "anonymous": None,
        "physician": make_user("jane", first_name="Jane", last_name="Smith"),
        "power": make_user("power", ["view", "modify", "mark_study"], first_name="Pat", last_name="Power"),
        "sysadmin": make_user("sysadmin", ["system_admin", "monitor"], first_name="Sam", last_name="Admin"),
        "root": make_user("root"),
        "member": make_user("member", first_name="Mia", last_name="Member"),
        "outsider": make_user("outsider", first_name="Otto", last_name="Outsider"),
        "modify_only": make_user("modifier", ["modify"], first_name="Mo", last_name="Modify"),
    }
    group = UserGroup.objects.create(name="radiology", description=INSTITUTION)
    users["member"].pacs_groups.add(group)
    studies = {
        "public": make_study("1.2.826.1.1", "PUB1", public=True, patient_name="PUBLIC^PAT"),
        "own": make_study("1.2.826.1.2", "OWN1", referring="SMITH^JANE", patient_name="OWN^PAT",
                          institution=INSTITUTION),
        "other": make_study("1.2.826.1.3", "OTH1", referring="JONES^BOB", patient_name="OTHER^PAT"),
    }
    return World(users, studies)


# Which studies each role sees: Jane has no View, so only public and her own private study;
# View holders (power) see everything; sysadmin has no View; root holds every privilege.
VISIBLE = {
    "anonymous": set(),
    "physician": {"public", "own"},
    "power": {"public", "own", "other"},
    "sysadmin": {"public"},
    "root": {"public", "own", "other"},
    "member": {"public", "own"},
    "outsider": {"public"},
    "modify_only": {"public"},
}


def make_world_with_files(folder) -> World:
    """The same people and studies, but with one stored image per study (through the one ingest
    path), so thumbnails, frames, headers and downloads can be asked for."""
    from pacsone.ingest import Origin, ingest_file
    from pacsone.visibility import set_patient_public
    from tests.helpers import make_file

    world = make_world()
    for name, study in world.studies.items():
        Study.objects.filter(pk=study.pk).delete()
        path = make_file(folder, f"{name}.dcm", study_uid=study.study_instance_uid,
                         patient_id=study.patient.patient_id, patient_name=study.patient.patient_name,
                         ReferringPhysicianName=study.referring_physician_name,
                         InstitutionName=study.institution_name)
        ingest_file(path, Origin("import"))
        stored = Study.objects.get(study_instance_uid=study.study_instance_uid)
        if study.public:
            set_patient_public(stored.patient, True)
        world.studies[name] = Study.objects.select_related("patient").get(pk=stored.pk)
    return world
