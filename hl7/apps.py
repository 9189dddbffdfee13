from django.apps import AppConfig


class Hl7Config(AppConfig):
    """The HL7 v2 MLLP interface: inbound ADT/ORM/ORU, worklist, outbound notifications."""

    name = "hl7"
    verbose_name = "HL7 interface"
