"""DICOMweb test fixtures: the people and studies of the access tests (tests/people.py) with
one stored image each, a small CT series, API tokens, and `dicomweb-client` against a live
server."""

import pytest
from dicomweb_client.api import DICOMwebClient

from accounts.tokens import issue_token
from tests.helpers import ingest_instance, make_dataset, write_dataset
from tests.people import make_world_with_files

CT_STUDY, CT_SERIES = "1.2.826.7.1", "1.2.826.7.1.1"
SLICES = 3


@pytest.fixture
def world(tmp_path):
    return make_world_with_files(tmp_path)


@pytest.fixture
def ct_study(tmp_path, world):
    """Three CT slices in a public study (so every role sees them)."""
    from pacsone.visibility import set_patient_public
    from pacsone.models import Study

    for number in range(1, SLICES + 1):
        ds = make_dataset(study_uid=CT_STUDY, series_uid=CT_SERIES, sop_uid=f"{CT_SERIES}.{number}",
                          patient_id="CT1", patient_name="SLICE^CARL", InstanceNumber=number,
                          StudyDescription="CT CHEST", SeriesDescription="Axial", SeriesNumber=2,
                          WindowCenter="40", WindowWidth="400", ProtocolName="CHEST ROUTINE")
        ingest_instance(write_dataset(ds, tmp_path / f"ct{number}.dcm"))
    study = Study.objects.get(study_instance_uid=CT_STUDY)
    set_patient_public(study.patient, True)
    return study


def token_for(user) -> str:
    return issue_token(user, "dicomweb test")[1]


def client_for(live_server, user=None, **kwargs) -> DICOMwebClient:
    headers = {"Authorization": f"Token {token_for(user)}"} if user is not None else {}
    return DICOMwebClient(url=f"{live_server.url}/dicomweb", headers=headers, **kwargs)
