"""The log line: one format for the console and the log file, made once per record."""

import io
import sys
import logging

from django.conf import settings

from pacsone.log_format import FormattedOnce


def test_a_record_is_formatted_once_for_every_handler_that_shares_the_format(monkeypatch):
    formatter = FormattedOnce(settings.LOGGING["formatters"]["plain"]["format"])
    made = []
    real = logging.Formatter.formatTime
    monkeypatch.setattr(logging.Formatter, "formatTime", lambda *args: made.append(1) or real(*args))
    streams = [io.StringIO(), io.StringIO()]
    logger = logging.Logger("pacsone.format-test")
    for stream in streams:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)

    logger.warning("ingest stored sop=%s ae=%s", "1.2.3", "MÜLLER")

    assert streams[0].getvalue() == streams[1].getvalue()
    assert " WARNING pacsone.format-test pid=" in streams[0].getvalue()
    assert streams[0].getvalue().endswith("ingest stored sop=1.2.3 ae=MÜLLER\n")
    assert len(made) == 1


def test_another_format_on_the_same_record_is_its_own():
    record = logging.LogRecord("pacsone.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    assert FormattedOnce("%(message)s").format(record) == "hello there"
    assert FormattedOnce("%(levelname)s %(message)s").format(record) == "INFO hello there"


def test_an_exception_is_formatted_with_its_traceback():
    try:
        raise ZeroDivisionError("nothing to divide")
    except ZeroDivisionError:
        record = logging.LogRecord("pacsone.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = FormattedOnce("%(message)s").format(record)
    assert text.startswith("failed\nTraceback") and "ZeroDivisionError: nothing to divide" in text
