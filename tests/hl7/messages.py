"""HL7 v2 test messages (ER7 text, segments ended by CR) and an MLLP client of our own for the
cases a real client will not send (garbage, split frames)."""

import socket

START, END = b"\x0b", b"\x1c\r"


def message(*segments: str, control_id: str = "MSG1", kind: str = "ADT^A08^ADT_A01", charset: str = "",
            version: str = "2.5") -> str:
    msh = f"MSH|^~\\&|RIS|HOSP|PACSONE|HOSP|20240105120000||{kind}|{control_id}|P|{version}"
    if charset:
        msh += "||||||" + charset
    return "\r".join([msh, *segments]) + "\r"


def adt_a08(patient_id: str, name: str, control_id: str = "A08-1", birth: str = "19700101", sex: str = "M",
            charset: str = "") -> str:
    return message("EVN|A08|20240105120000", f"PID|1||{patient_id}^^^HOSP^MR||{name}||{birth}|{sex}", "PV1|1|O",
                   control_id=control_id, charset=charset)


def adt_a40(target_id: str, source_id: str, control_id: str = "A40-1", name: str = "") -> str:
    return message("EVN|A40|20240105120000", f"PID|1||{target_id}^^^HOSP^MR||{name}", f"MRG|{source_id}^^^HOSP^MR",
                   control_id=control_id, kind="ADT^A40^ADT_A39")


def orm_o01(placer: str, accession: str, patient_id: str = "P100", name: str = "DOE^JANE", modality: str = "CT",
            station: str = "CT01", start: str = "20240110083000", control: str = "NW", control_id: str = "ORM-1",
            study_uid: str = "", charset: str = "") -> str:
    segments = [
        f"PID|1||{patient_id}^^^HOSP^MR||{name}||19800202|F",
        "PV1|1|O|||||1234^WELBY^MARCUS",
        f"ORC|{control}|{placer}|{accession}||SC||^^^{start}",
        f"OBR|1|{placer}|{accession}|CTHEAD^CT Head without contrast|||{start}|||||||||||{accession}|RP{placer}"
        f"|SPS{placer}|{station}|||{modality}",
    ]
    if study_uid:
        segments.append(f"ZDS|{study_uid}^RIS^Application^DICOM")
    return message(*segments, control_id=control_id, kind="ORM^O01^ORM_O01", charset=charset)


def oru_r01(accession: str, text_lines: list[str], control_id: str = "ORU-1") -> str:
    obx = [f"OBX|{i}|TX|REPORT||{line}||||||F" for i, line in enumerate(text_lines, 1)]
    obr = ["OBR", "1", "", accession, "RAD^Report", "", "", "20240105"] + [""] * 10 + [accession] + [""] * 6 + ["F"]
    assert obr[18] == accession and obr[25] == "F"  # OBR-18 accession number, OBR-25 result status
    return message("PID|1||P1^^^HOSP", "|".join(obr), *obx, control_id=control_id, kind="ORU^R01^ORU_R01")


def framed(data: bytes) -> bytes:
    return START + data + END


class Client:
    """A raw MLLP connection: send any bytes, read the ACK frames that come back."""

    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def ack(self) -> str | None:
        """The next ACK's text, or None when the server closed the connection."""
        while END not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        frame, _, self.buffer = self.buffer.partition(END)
        return frame.lstrip(START).decode("utf-8", "replace")

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def msa(ack_text: str) -> list[str]:
    """The MSA segment's fields (MSA-n is [n])."""
    for segment in ack_text.split("\r"):
        if segment.startswith("MSA|"):
            return segment.split("|")
    raise AssertionError(f"no MSA in {ack_text!r}")
