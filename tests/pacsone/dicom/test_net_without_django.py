"""The network engine (pacsone/dicom/net/) is importable without Django: it knows PDUs, DIMSE
messages and negotiation, never the index, so it can be tested, fuzzed and reused alone."""

import subprocess
import sys

from django.conf import settings


def test_it_imports_no_django_module():
    modules = ["acceptor", "coercion", "commands", "file_meta", "identifier_codec", "identifier_text", "negotiation",
               "requestor", "sending", "status", "wire"]
    program = (
        "import sys\n"
        + "".join(f"import pacsone.dicom.net.{name}\n" for name in modules)
        + "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        + "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            cwd=settings.BASE_DIR, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
