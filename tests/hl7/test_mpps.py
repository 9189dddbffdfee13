"""MPPS SCP: pynetdicom's N-CREATE and N-SET move the worklist step through IN PROGRESS to
COMPLETED or DISCONTINUED; a final step may no longer be changed."""

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from audit.models import Entry
from hl7.inbound import handle
from hl7.models import PerformedStep, ScheduledStep

from .messages import msa, orm_o01


@pytest.fixture
def step(scp):
    assert msa(handle(orm_o01("PL1", "ACC1", study_uid="1.2.3.99").encode(), "127.0.0.1").decode())[1] == "AA"
    return ScheduledStep.objects.get()


def mpps_association(port: int):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    return assoc


def creation(step: ScheduledStep, state: str = "IN PROGRESS") -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = state
    ds.Modality = "CT"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedProcedureStepStartDate = "20240110"
    ds.PerformedProcedureStepStartTime = "083500"
    ds.PatientID = step.patient_id
    item = Dataset()
    item.StudyInstanceUID = step.study_instance_uid
    item.AccessionNumber = step.accession_number
    item.ScheduledProcedureStepID = step.step_id
    item.RequestedProcedureID = step.requested_procedure_id
    ds.ScheduledStepAttributesSequence = [item]
    return ds


def ending(state: str) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = state
    ds.PerformedProcedureStepEndDate = "20240110"
    ds.PerformedProcedureStepEndTime = "090000"
    return ds


def test_n_create_then_n_set_completes_the_step(scp, step):
    uid = generate_uid()
    assoc = mpps_association(scp[1])
    try:
        status, _ = assoc.send_n_create(creation(step), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0000
        step.refresh_from_db()
        assert step.state == ScheduledStep.State.IN_PROGRESS
        status, _ = assoc.send_n_set(ending("COMPLETED"), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0000
    finally:
        assoc.release()
    step.refresh_from_db()
    assert step.state == ScheduledStep.State.COMPLETED
    performed = PerformedStep.objects.get(sop_instance_uid=uid)
    assert performed.state == "COMPLETED" and performed.step == step
    assert performed.attributes["00400252"]["Value"] == ["COMPLETED"]
    assert Entry.objects.filter(target=f"MPPS {uid}", ae_title="MODALITY").count() == 2


def test_discontinued_discontinues_the_step_and_a_final_step_is_frozen(scp, step):
    uid = generate_uid()
    assoc = mpps_association(scp[1])
    try:
        assert assoc.send_n_create(creation(step), ModalityPerformedProcedureStep, uid)[0].Status == 0
        assert assoc.send_n_set(ending("DISCONTINUED"), ModalityPerformedProcedureStep, uid)[0].Status == 0
        status, _ = assoc.send_n_set(ending("COMPLETED"), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0110 and status.ErrorID == 0xA710
    finally:
        assoc.release()
    step.refresh_from_db()
    assert step.state == ScheduledStep.State.DISCONTINUED


def test_bad_mpps_requests_get_their_statuses(scp, step):
    uid = generate_uid()
    assoc = mpps_association(scp[1])
    try:
        assert assoc.send_n_create(creation(step, "COMPLETED"), ModalityPerformedProcedureStep, uid)[0].Status == 0x0106
        assert assoc.send_n_set(ending("COMPLETED"), ModalityPerformedProcedureStep, generate_uid())[0].Status == 0x0112
        assert assoc.send_n_create(creation(step), ModalityPerformedProcedureStep, uid)[0].Status == 0
        assert assoc.send_n_create(creation(step), ModalityPerformedProcedureStep, uid)[0].Status == 0x0111
        assert assoc.send_n_set(ending("FINISHED"), ModalityPerformedProcedureStep, uid)[0].Status == 0x0106
    finally:
        assoc.release()
    assert PerformedStep.objects.get().state == "IN PROGRESS"


def test_an_mpps_naming_no_scheduled_step_is_kept_unscheduled(scp):
    ds = creation(ScheduledStep(patient_id="X", study_instance_uid="1.2.3.4.5", accession_number="NONE", step_id="S"))
    assoc = mpps_association(scp[1])
    try:
        assert assoc.send_n_create(ds, ModalityPerformedProcedureStep, generate_uid())[0].Status == 0
    finally:
        assoc.release()
    assert PerformedStep.objects.get().step is None
