"""Stored instances sent as C-STORE requests: the sub-operations of C-GET (on the requestor's own
association) and of C-MOVE (on an association we open to the destination).

A stored file goes out as it is, read from disk a megabyte at a time, when the peer accepted its
transfer syntax; otherwise it is re-encoded in an uncompressed syntax the peer accepted, its
pixel data decompressed one frame at a time (transcoding.py). Either way memory stays flat
whatever the file's size. An instance that cannot be sent either way is a failed sub-operation.
"""

import logging
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Protocol

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID

from . import coercion, commands, transcoding, wire

log = logging.getLogger(__name__)

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
WARNING_STATUSES = {0x0001, 0xB000, 0xB006, 0xB007}
_META_GROUP_LENGTH = struct.Struct("<HH2sHL")


class Channel(Protocol):
    """An association we send C-STORE requests on (acceptor.AcceptedAssociation, requestor.StoreAssociation)."""

    connection: wire.Connection

    def context_for(self, sop_class: str, transfer_syntaxes: list[str], as_scu: bool = False): ...

    def await_response(self, message_id: int): ...


@dataclass
class Instance:
    """What a sub-operation needs to know of a stored instance."""

    open_file: Callable[[], BinaryIO]  # opens the stored file (pacsone.storage.opener): a real file, with fileno()
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    name: str = ""  # for messages: which file this is
    coerce: dict[str, str] | None = None  # attributes sent with other values than stored (coercion.py)


@dataclass
class Tally:
    """Sub-operation counts, as C-MOVE/C-GET responses report them."""

    total: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.total - self.completed - self.failed - self.warning

    def count(self, status: int, sop_instance: str) -> None:
        if status == 0x0000:
            self.completed += 1
        elif status in WARNING_STATUSES:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(sop_instance)

    def summary(self) -> str:
        # Plain English here: the engine imports nothing of Django (pacsone.humanize is Django's).
        warnings = "1 warning" if self.warning == 1 else f"{self.warning} warnings"
        return f"{self.completed} of {self.total} sent, {warnings}, {self.failed + self.remaining} failed"


class Unsendable(Exception):
    """This instance cannot go out on this association."""


def dataset_offset(fd: int) -> int | None:
    """Where the data set starts in a Part-10 file written with its (0002,0000) group length
    (as ours are); None when the file is laid out otherwise."""
    head = os.pread(fd, 144, 0)
    if len(head) < 144 or head[128:132] != b"DICM":
        return None
    group, element, vr, length, group_length = _META_GROUP_LENGTH.unpack_from(head, 132)
    if (group, element, vr, length) != (2, 0, b"UL", 4):
        return None
    return 144 + group_length


def send_instance(channel: Channel, instance: Instance, message_id: int, as_scu: bool,
                  move_originator: tuple[str, int] | None = None) -> int:
    """Send one C-STORE and return the peer's status (0xA700-ish failures of ours included)."""
    send_request(channel, instance, message_id, as_scu, move_originator)
    return await_status(channel, message_id)


def send_request(channel: Channel, instance: Instance, message_id: int, as_scu: bool,
                 move_originator: tuple[str, int] | None = None) -> None:
    """Send one C-STORE request (command and data set) without waiting for its response, so
    that the caller can do something else (record the previous instance) while the peer stores
    it. Unsendable before anything is sent when the instance cannot go out."""
    context = channel.context_for(instance.sop_class, [instance.transfer_syntax], as_scu)
    originator_ae, originator_id = move_originator or (None, None)
    command = commands.store_request(message_id, instance.sop_class, instance.sop_instance,
                                     move_originator=originator_ae, move_originator_message_id=originator_id)
    if instance.coerce:
        _send_coerced(channel, instance, command, as_scu)
        return
    if context is not None:
        f = instance.open_file()
        try:
            fd = f.fileno()
            offset = dataset_offset(fd)
            if offset is not None:
                size = os.fstat(fd).st_size
                channel.connection.send_message(context.context_id, command)
                channel.connection.send_file_dataset(context.context_id, fd, offset, size - offset)
                return
        finally:
            f.close()
    context, chunks = _converted(channel, instance, as_scu)
    channel.connection.send_message(context.context_id, command)
    channel.connection.send_dataset_stream(context.context_id, chunks)


def await_status(channel: Channel, message_id: int) -> int:
    """The peer's status for the C-STORE request `message_id`."""
    return _status_of(channel.await_response(message_id))


def _status_of(response) -> int:
    return response.command.get(commands.STATUS, 0xC000)


def _converted(channel: Channel, instance: Instance, as_scu: bool):
    """(context, data set as a stream of buffers) for a peer that did not take the stored
    transfer syntax; Unsendable before anything is sent when there is no way."""
    stored = UID(instance.transfer_syntax)
    candidates = [stored] if not stored.is_compressed else []
    candidates += [syntax for syntax in UNCOMPRESSED if syntax not in candidates]
    context = channel.context_for(instance.sop_class, candidates, as_scu)
    if context is None:
        raise Unsendable(f"the peer accepts neither {stored} nor an uncompressed syntax for {instance.sop_class}")
    try:
        return context, transcoding.uncompressed_chunks(instance.open_file, context.transfer_syntax)
    except transcoding.Untranscodable as error:
        raise Unsendable(str(error)) from None


def _send_coerced(channel: Channel, instance: Instance, command: bytes, as_scu: bool) -> None:
    """Send with `instance.coerce` applied: in the stored syntax if the peer took it, else uncompressed."""
    stored = UID(instance.transfer_syntax)
    candidates = [stored, *(syntax for syntax in UNCOMPRESSED if syntax != stored)]
    context = channel.context_for(instance.sop_class, candidates, as_scu)
    if context is None:
        raise Unsendable(f"the peer accepts neither {stored} nor an uncompressed syntax for {instance.sop_class}")
    try:
        chunks = coercion.coerced_chunks(instance.open_file, stored, context.transfer_syntax, instance.coerce)
    except coercion.Uncoercible as error:
        raise Unsendable(str(error)) from None
    channel.connection.send_message(context.context_id, command)
    channel.connection.send_dataset_stream(context.context_id, chunks)
