"""HL7 v2 values in DICOM form: person names, dates, times, sex, and who sent a message."""

import datetime
import re
from dataclasses import dataclass

DIGITS = re.compile(r"^\d+")


@dataclass(frozen=True)
class Sender:
    """The system that sent a message: its MSH-3 and the address it called from (journal)."""

    application: str
    address: str

    @property
    def username(self) -> str:
        return f"hl7:{self.application or 'unknown'}"[:150]


def person_name(components: list[str]) -> str:
    """HL7 XPN (family^given^middle^suffix^prefix^...) -> DICOM PN (family^given^middle^prefix^suffix)."""
    parts = (components + [""] * 5)[:5]
    family, given, middle, suffix, prefix = parts
    return "^".join([family, given, middle, prefix, suffix]).rstrip("^")


def dicom_date(value: str) -> str:
    """HL7 DT/TS -> DICOM DA (YYYYMMDD), '' when it is not a date."""
    digits = DIGITS.match(value or "")
    if not digits or len(digits.group()) < 8:
        return ""
    text = digits.group()[:8]
    try:
        datetime.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return ""
    return text


def dicom_time(value: str) -> str:
    """HL7 TS -> DICOM TM (HHMMSS) of its time part, '' when it has none."""
    digits = DIGITS.match(value or "")
    if not digits or len(digits.group()) < 10:
        return ""
    return (digits.group()[8:14] + "0000")[:6]


def python_date(value: str) -> datetime.date | None:
    text = dicom_date(value)
    return datetime.datetime.strptime(text, "%Y%m%d").date() if text else None


def dicom_sex(value: str) -> str:
    value = (value or "").strip().upper()[:1]
    return value if value in ("M", "F", "O") else ""
