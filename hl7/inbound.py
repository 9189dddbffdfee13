"""One inbound message, from its bytes to its ACK: read it, apply it, log it.

AR when it cannot be read (no MSH, bad separators, undecodable text, unparseable, unsupported
message type); AE when it was read but could not be applied (unknown patient to merge, an order
without ID, a failure of ours); AA when it was applied. Every message lands in the log
(hl7.models.Message) with its ACK, whatever happened.
"""

import logging

from django.db import OperationalError, transaction

from audit.journal import Action, record
from pacsone.deadlocks import is_deadlock, retried_on_deadlock

from . import codec
from .handlers import HANDLERS
from .models import Message
from .patients import NotApplied
from .values import Sender

log = logging.getLogger(__name__)

STATUS_OF = {"AA": Message.Status.APPLIED, "AE": Message.Status.FAILED, "AR": Message.Status.REJECTED}


def apply(raw: bytes, peer: str) -> tuple[str, str, codec.Parsed | None, str, str]:
    """(ACK code, what happened, the parsed message or None, its text, its codec)."""
    try:
        parsed, charset = codec.parse(raw)
    except codec.Unreadable as error:
        try:
            text, charset, _label = codec.decode(raw)
        except codec.Unreadable:
            text, charset = raw.decode("latin-1"), None
        return "AR", str(error), error.header, text, charset or ""
    handler = HANDLERS.get((parsed.message_type.upper(), parsed.trigger.upper()))
    if handler is None:
        return "AR", f"unsupported message type {parsed.message_type}^{parsed.trigger}", parsed, parsed.text, charset
    sender = Sender(parsed.value(parsed.msh, 3), peer)
    try:
        return "AA", handler(parsed, sender), parsed, parsed.text, charset
    except NotApplied as error:
        return "AE", str(error), parsed, parsed.text, charset
    except OperationalError as error:
        if is_deadlock(error):  # the whole transaction was rolled back: handle() applies it again
            raise
        log.exception("hl7 message failed type=%s^%s control_id=%s", parsed.message_type, parsed.trigger,
                      parsed.control_id)
        return "AE", f"internal error: {type(error).__name__}", parsed, parsed.text, charset
    except Exception as error:  # a failure of ours: the sender may retry
        log.exception("hl7 message failed type=%s^%s control_id=%s", parsed.message_type, parsed.trigger,
                      parsed.control_id)
        return "AE", f"internal error: {type(error).__name__}", parsed, parsed.text, charset


def _log_fields(parsed: codec.Parsed | None) -> dict:
    if parsed is None:
        return {}
    pid, obr, orc, ipc = parsed.first("PID"), parsed.first("OBR"), parsed.first("ORC"), parsed.first("IPC")
    return {
        "message_type": f"{parsed.message_type}^{parsed.trigger}".strip("^")[:32],
        "control_id": parsed.control_id[:64],
        "sending_application": parsed.value(parsed.msh, 3)[:64],
        "patient_id": parsed.value(pid, 3)[:64],
        "accession_number": (parsed.value(ipc, 1) or parsed.value(obr, 18) or parsed.value(orc, 3))[:64],
    }


def handle(raw: bytes, peer: str) -> bytes:
    """The ACK (encoded in the message's character set) for one message; logs it. The change,
    its journal entry and the log row commit together (one commit per message)."""
    def applied_and_logged():
        with transaction.atomic():
            code, reason, parsed, text, charset = apply(raw, peer)
            ack_text, ack_bytes = codec.build_ack(code, parsed, "" if code == "AA" else reason, charset or None)
            Message.objects.create(peer=peer[:64], raw=raw, text=text, charset=(parsed.charset_label if parsed else "")[:32],
                                   status=STATUS_OF[code], reason=reason, ack=ack_text, **_log_fields(parsed))
        return code, parsed, ack_bytes

    try:
        # Messages on several connections at once may meet in a deadlock (MariaDB's gap locks):
        # the database rolls the victim back whole, and it is applied again.
        code, parsed, ack_bytes = retried_on_deadlock(applied_and_logged, "hl7 message")
    except Exception:  # the database failed: nothing was applied, and the sender may retry
        log.exception("hl7 message not applied peer=%s", peer)
        code, reason = "AE", "internal error: the message could not be stored"
        parsed = None
        try:
            parsed, charset = codec.parse(raw)
        except codec.Unreadable:
            charset = None
        ack_text, ack_bytes = codec.build_ack(code, parsed, reason, charset)
    log.info("hl7 message peer=%s type=%s control_id=%s ack=%s", peer,
             f"{parsed.message_type}^{parsed.trigger}" if parsed else "?", parsed.control_id if parsed else "", code)
    return ack_bytes


def reprocess(message: Message, *, acting_user, request=None) -> Message:
    """Apply a logged message again (after fixing what made it fail): its status, reason and ACK
    are replaced; the attempt is journaled by the user who asked."""
    code, reason, parsed, _text, charset = apply(bytes(message.raw), message.peer)
    ack_text, _ack_bytes = codec.build_ack(code, parsed, "" if code == "AA" else reason, charset or None)
    message.status, message.reason, message.ack = STATUS_OF[code], reason, ack_text
    message.reprocessed += 1
    message.save(update_fields=["status", "reason", "ack", "reprocessed"])
    record(Action.MODIFY, user=acting_user, request=request, patient_id=message.patient_id,
           target=f"HL7 message {message.pk} reprocessed", detail=f"{code}: {reason}"[:2000])
    return message
