"""A listening HL7 receiver for the outbound tests: hl7apy's own MLLP server (not ours), which
records what it receives and answers AA (or what it is told to)."""

import threading

from hl7apy.mllp import AbstractHandler, MLLPServer

from tests.helpers import free_port


class Receiver:
    def __init__(self, answer: str = "AA"):
        self.received: list[str] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(AbstractHandler):
            def reply(self):
                receiver.received.append(self.incoming_message)
                receiver.arrived.set()
                control_id = self.incoming_message.split("\r")[0].split("|")[9]
                return ("\x0b" f"MSH|^~\\&|RECEIVER||PACSONE||20240101000000||ACK|R{len(receiver.received)}|P|2.5\r"
                        f"MSA|{answer}|{control_id}\r" "\x1c\r")  # hl7apy leaves the framing to us

        self.port = free_port()
        handlers = {kind: (Handler,) for kind in ("ORM^O01^ORM_O01", "ORU^R01^ORU_R01")}
        self.server = MLLPServer("127.0.0.1", self.port, handlers, timeout=5)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
