"""The log line format, formatted once per record.

Every record goes to two handlers (the console and the shared log file, settings.LOGGING), and
logging formats it once per handler: the time turned into text twice, the message built twice.
On the SCP that is one INFO line per stored instance, whose formatting was a tenth of the
Python time the receiving thread spent on a small image (bench/cpu_profile.py --gil).
"""

import logging

# No log line names its source file, function, thread or process name: logging need not look
# them up for every record (the "Optimization" section of Python's logging HOWTO). Set when
# settings.LOGGING loads this module, in every process of the server.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False


class FormattedOnce(logging.Formatter):
    """A Formatter that keeps the text it made on the record: the next handler sharing this
    formatter gets the same text without formatting again."""

    def format(self, record: logging.LogRecord) -> str:
        formatted = record.__dict__.get("_formatted")
        if formatted is not None and formatted[0] is self:
            return formatted[1]
        text = super().format(record)
        record._formatted = (self, text)
        return text
