"""The HL7 interface's records: the message log, the outbound destinations, the modality
worklist's scheduled procedure steps (fed by ORM/OMI), the performed steps (MPPS), patient
merges (kept so that they can be undone) and reports attached to studies (ORU)."""

from django.db import models


class Message(models.Model):
    """One inbound message as it arrived, how it was decoded, and the ACK it got."""

    class Status(models.TextChoices):
        APPLIED = "applied", "Applied (AA)"
        FAILED = "failed", "Not applied (AE)"
        REJECTED = "rejected", "Rejected (AR)"

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    peer = models.CharField(max_length=64, blank=True, default="")
    raw = models.BinaryField()  # the bytes between the MLLP start and end blocks
    text = models.TextField(blank=True, default="")  # decoded, for reading and searching
    charset = models.CharField(max_length=32, blank=True, default="")
    message_type = models.CharField(max_length=32, blank=True, default="", db_index=True)
    control_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    sending_application = models.CharField(max_length=64, blank=True, default="")
    patient_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    accession_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    reason = models.TextField(blank=True, default="")  # why it was not applied, or what it did
    ack = models.TextField(blank=True, default="")
    reprocessed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"HL7 {self.message_type or '?'} {self.control_id}"


class Destination(models.Model):
    """A RIS/HIS that receives our notifications over MLLP."""

    class Event(models.TextChoices):
        RECEIVED = "received", "Study received"
        READ = "read", "Study marked read"
        MPPS = "mpps", "MPPS completed"

    name = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    events = models.CharField(max_length=64, default="received")  # comma-separated Event values
    receiving_application = models.CharField(max_length=64, blank=True, default="")
    receiving_facility = models.CharField(max_length=64, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def event_list(self) -> list[str]:
        return [event for event in self.events.split(",") if event]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class ScheduledStep(models.Model):
    """A modality worklist entry: one Scheduled Procedure Step of an order."""

    class State(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        IN_PROGRESS = "IN PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        DISCONTINUED = "DISCONTINUED", "Discontinued"
        CANCELLED = "CANCELLED", "Cancelled"

    # The order, as the RIS names it (ORC-2 placer, ORC-3 filler).
    placer_order_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    filler_order_number = models.CharField(max_length=64, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    requested_procedure_id = models.CharField(max_length=64, blank=True, default="")
    requested_procedure_description = models.CharField(max_length=64, blank=True, default="")
    study_instance_uid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    referring_physician_name = models.CharField(max_length=324, blank=True, default="")
    # The patient, as the order names it (DICOM forms: PN, DA, CS).
    patient_id = models.CharField(max_length=64, db_index=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_name = models.CharField(max_length=324, blank=True, default="")
    patient_name_search = models.CharField(max_length=324, blank=True, default="", db_index=True)
    birth_date = models.CharField(max_length=8, blank=True, default="")
    sex = models.CharField(max_length=16, blank=True, default="")
    # The step.
    step_id = models.CharField(max_length=16, blank=True, default="")
    modality = models.CharField(max_length=16, blank=True, default="", db_index=True)
    station_ae_title = models.CharField(max_length=16, blank=True, default="", db_index=True)
    station_name = models.CharField(max_length=16, blank=True, default="")
    start_date = models.CharField(max_length=8, blank=True, default="", db_index=True)  # YYYYMMDD
    start_time = models.CharField(max_length=6, blank=True, default="")  # HHMMSS
    description = models.CharField(max_length=64, blank=True, default="")
    performing_physician_name = models.CharField(max_length=324, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED, db_index=True)
    study = models.ForeignKey("pacsone.Study", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="scheduled_steps")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start_date", "start_time", "id"]

    def __str__(self) -> str:
        return f"Step {self.step_id or self.pk} ({self.accession_number})"


class PerformedStep(models.Model):
    """A Modality Performed Procedure Step (N-CREATE, then N-SET)."""

    sop_instance_uid = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=16, db_index=True)
    step = models.ForeignKey(ScheduledStep, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="performed")
    modality = models.CharField(max_length=16, blank=True, default="")
    station_ae_title = models.CharField(max_length=16, blank=True, default="")
    calling_ae_title = models.CharField(max_length=16, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="")
    study_instance_uid = models.CharField(max_length=64, blank=True, default="")
    attributes = models.JSONField(default=dict)  # the DICOM JSON of the latest N-CREATE/N-SET
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"MPPS {self.sop_instance_uid} {self.state}"


class PatientMerge(models.Model):
    """ADT^A40: the studies of one patient (the source) moved to another (the target). The
    source's row stays (without studies) so that its ID still finds the merged studies and
    the merge can be undone exactly."""

    source = models.ForeignKey("pacsone.Patient", null=True, on_delete=models.SET_NULL, related_name="merged_away")
    target = models.ForeignKey("pacsone.Patient", null=True, on_delete=models.SET_NULL, related_name="merged_into")
    source_patient_id = models.CharField(max_length=64, db_index=True)
    target_patient_id = models.CharField(max_length=64)
    study_pks = models.JSONField(default=list)  # the studies that moved
    merged_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-merged_at", "-id"]

    def __str__(self) -> str:
        return f"Merge {self.source_patient_id} -> {self.target_patient_id}"



class CoercedPatient(models.Model):
    """A patient whose demographics or ID HL7 changed in the index: its stored files still hold
    what was received, so C-MOVE and C-GET send them with the index's values (hl7/coercion.py)."""

    patient = models.OneToOneField("pacsone.Patient", on_delete=models.CASCADE, related_name="hl7_coercion")
    changed_at = models.DateTimeField(auto_now=True)
