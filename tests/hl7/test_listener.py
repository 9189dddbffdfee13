"""The MLLP listener against the bad-message catalogue: each case gets its ACK or a clean close,
and the next good message gets an AA (issue 14, deliverable 7)."""

import socket
import threading
import time

import pytest

from hl7.models import Message
from pacsone.models import Patient

from .messages import Client, adt_a08, framed, message, msa


@pytest.fixture
def patient(transactional_db):
    return Patient.objects.create(patient_id="P1", patient_name="OLD^NAME", patient_name_search="OLD^NAME")


def good_message_gets_aa(port: int, control_id: str = "GOOD") -> None:
    client = Client(port)
    try:
        client.send(framed(adt_a08("P1", "GOOD^AFTER", control_id=control_id).encode()))
        fields = msa(client.ack())
        assert fields[1:3] == ["AA", control_id]
    finally:
        client.close()


def test_it_answers_aa_and_applies_an_a08(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "NEW^NAME^^^DR").encode()))
    ack = client.ack()
    assert msa(ack)[1:3] == ["AA", "A08-1"]
    assert ack.startswith("MSH|^~\\&|PACSONE||RIS|HOSP|")
    assert "|ACK^A08^ACK|" in ack
    patient.refresh_from_db()
    assert patient.patient_name == "NEW^NAME^^DR"
    logged = Message.objects.get(control_id="A08-1")
    assert logged.status == Message.Status.APPLIED and logged.ack == ack


def test_it_serves_many_messages_on_one_connection(hl7_port, patient):
    client = Client(hl7_port)
    for n in range(5):
        client.send(framed(adt_a08("P1", f"NAME^{n}", control_id=f"C{n}").encode()))
        assert msa(client.ack())[1:3] == ["AA", f"C{n}"]
    assert Patient.objects.get(pk=patient.pk).patient_name == "NAME^4"


def test_two_messages_in_one_packet_get_two_acks(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "ONE^X", control_id="TWO-1").encode())
                + framed(adt_a08("P1", "TWO^X", control_id="TWO-2").encode()))
    assert msa(client.ack())[1:3] == ["AA", "TWO-1"]
    assert msa(client.ack())[1:3] == ["AA", "TWO-2"]


def test_a_message_split_across_packets_is_assembled(hl7_port, patient):
    data = framed(adt_a08("P1", "SPLIT^X", control_id="SPLIT").encode())
    client = Client(hl7_port)
    for start in range(0, len(data), 7):
        client.send(data[start:start + 7])
        time.sleep(0.005)
    assert msa(client.ack())[1:3] == ["AA", "SPLIT"]
    assert Patient.objects.get(pk=patient.pk).patient_name == "SPLIT^X"


def test_a_frame_without_msh_gets_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(b"PID|1||P1\r"))
    fields = msa(client.ack())
    assert fields[1] == "AR" and "MSH" in fields[3]
    client.send(framed(adt_a08("P1", "A^B", control_id="NEXT").encode()))
    assert msa(client.ack())[1:3] == ["AA", "NEXT"]
    assert Message.objects.filter(status=Message.Status.REJECTED).count() == 1


def test_wrong_separators_get_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(b"MSHA^~\\&ARISAHOSP\rPID|1\r"))
    assert msa(client.ack())[1] == "AR"
    good_message_gets_aa(hl7_port)


def test_framed_binary_garbage_gets_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(bytes(range(0, 11)) + bytes(range(14, 256)) * 4))
    assert msa(client.ack())[1] == "AR"
    good_message_gets_aa(hl7_port)


def test_unframed_garbage_closes_the_connection_cleanly(hl7_port, patient):
    client = Client(hl7_port)
    client.send(b"GET / HTTP/1.0\r\n\r\n")
    assert client.ack() is None
    good_message_gets_aa(hl7_port)


def test_a_truncated_frame_then_a_new_one_gets_ar_then_aa(hl7_port, patient):
    truncated = adt_a08("P1", "CUT^SHORT", control_id="CUT").encode()[:90]
    client = Client(hl7_port)
    client.send(b"\x0b" + truncated + framed(adt_a08("P1", "WHOLE^ONE", control_id="WHOLE").encode()))
    first, second = msa(client.ack()), msa(client.ack())
    assert first[1:3] == ["AR", "CUT"] and "truncated" in first[3]
    assert second[1:3] == ["AA", "WHOLE"]
    assert Patient.objects.get(pk=patient.pk).patient_name == "WHOLE^ONE"


def test_a_frame_cut_by_the_peer_closing_is_dropped(hl7_port, patient):
    client = Client(hl7_port)
    client.send(b"\x0b" + adt_a08("P1", "NEVER^APPLIED").encode()[:50])
    client.sock.shutdown(socket.SHUT_WR)
    assert client.ack() is None
    assert Patient.objects.get(pk=patient.pk).patient_name == "OLD^NAME"
    good_message_gets_aa(hl7_port)


def test_a_10_mb_message_gets_ar_and_a_close(hl7_port, patient, settings):
    big = adt_a08("P1", "BIG^ONE", control_id="BIG") + "NTE|1||" + "x" * (10 << 20) + "\r"
    client = Client(hl7_port)
    sender = threading.Thread(target=lambda: _send_quietly(client, framed(big.encode())))
    sender.start()
    fields = msa(client.ack())
    sender.join(10)
    assert fields[1:3] == ["AR", "BIG"] and "limit" in fields[3]
    assert client.ack() is None
    assert Patient.objects.get(pk=patient.pk).patient_name == "OLD^NAME"
    good_message_gets_aa(hl7_port)


def _send_quietly(client: Client, data: bytes) -> None:
    try:
        client.send(data)
    except OSError:
        pass  # the server closed the connection after its AR, as it should


def test_an_unsupported_message_type_gets_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(message("QRD|20240101", kind="QRY^A19", control_id="Q1").encode()))
    fields = msa(client.ack())
    assert fields[1:3] == ["AR", "Q1"] and "unsupported message type" in fields[3]


def test_a_utf8_name_is_read_with_msh18(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "MÜLLER^JÜRGEN", charset="UNICODE UTF-8").encode("utf-8")))
    ack = client.ack()
    assert msa(ack)[1] == "AA" and "UNICODE UTF-8" in ack
    assert Patient.objects.get(pk=patient.pk).patient_name == "MÜLLER^JÜRGEN"


def test_a_latin1_name_is_read_with_msh18(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "GRÖßE^RENÉ", charset="8859/1").encode("latin-1")))
    assert msa(client.ack())[1] == "AA"
    assert Patient.objects.get(pk=patient.pk).patient_name == "GRÖßE^RENÉ"


def test_latin1_bytes_declared_utf8_get_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "GRÖßE^RENÉ", charset="UNICODE UTF-8").encode("latin-1")))
    fields = msa(client.ack())
    assert fields[1] == "AR" and "UNICODE UTF-8" in fields[3]
    assert Patient.objects.get(pk=patient.pk).patient_name == "OLD^NAME"
    good_message_gets_aa(hl7_port)


def test_an_unknown_character_set_gets_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(adt_a08("P1", "A^B", charset="KLINGON").encode()))
    assert msa(client.ack())[1] == "AR"


def test_a_silent_peer_is_timed_out(hl7_port, settings):
    client = Client(hl7_port, timeout=15)
    started = time.monotonic()
    client.send(b"\x0bMSH|^~\\&|")  # begun, never finished
    assert client.ack() is None
    assert time.monotonic() - started < 10  # PACS_HL7_MESSAGE_TIMEOUT is 3 s here


def test_connections_over_the_limit_are_closed_and_the_others_served(transactional_db, patient):
    from hl7.listener import HL7Server

    from tests.helpers import free_port

    server = HL7Server("127.0.0.1", free_port(), max_connections=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        idle = [Client(port) for _ in range(2)]
        time.sleep(0.3)
        extra = Client(port)
        assert _closed_soon(extra, wait=2)
        assert not any(_closed_soon(client) for client in idle)
        for client in idle:
            client.close()
        time.sleep(0.3)
        good_message_gets_aa(port)
    finally:
        server.shutdown()
        server.server_close()


def _closed_soon(client: Client, wait: float = 0.2) -> bool:
    client.sock.settimeout(wait)
    try:
        return client.sock.recv(1) == b""
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def test_an_ae_names_the_reason_when_it_cannot_apply(hl7_port, transactional_db):
    client = Client(hl7_port)
    client.send(framed(message("EVN|A40", "PID|1||NEW1", "MRG|NOBODY", kind="ADT^A40^ADT_A39", control_id="M1").encode()))
    fields = msa(client.ack())
    assert fields[1:3] == ["AE", "M1"] and "NOBODY" in fields[3]
    assert Message.objects.get(control_id="M1").status == Message.Status.FAILED


def test_an_unknown_hl7_version_gets_ar(hl7_port, patient):
    client = Client(hl7_port)
    client.send(framed(message("PID|1||P1||X^Y", version="9.9", control_id="V9").encode()))
    fields = msa(client.ack())
    assert fields[1:3] == ["AR", "V9"]
    assert Patient.objects.get(pk=patient.pk).patient_name == "OLD^NAME"


def test_several_connections_are_served_at_once(hl7_port, transactional_db):
    for n in range(4):
        Patient.objects.create(patient_id=f"C{n}", patient_name="BEFORE^X")
    results: dict[int, list[str]] = {}

    def sender(n: int) -> None:
        client = Client(hl7_port)
        try:
            results[n] = []
            for k in range(5):
                client.send(framed(adt_a08(f"C{n}", f"AFTER^{k}", control_id=f"C{n}-{k}").encode()))
                results[n].append(msa(client.ack())[1])
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {n: ["AA"] * 5 for n in range(4)}
    assert set(Patient.objects.values_list("patient_name", flat=True)) == {"AFTER^4"}
    assert Message.objects.filter(status=Message.Status.APPLIED).count() == 20
