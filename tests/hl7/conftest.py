import pytest

from tests.helpers import free_port


@pytest.fixture
def hl7_port(transactional_db, settings):
    """A live MLLP listener in this process on a free port."""
    from hl7.listener import start_listener

    settings.PACS_HL7_MESSAGE_TIMEOUT = 3
    settings.PACS_HL7_IDLE_TIMEOUT = 5
    port = free_port()
    server = start_listener(port, host="127.0.0.1")
    yield port
    server.shutdown()
    server.server_close()
