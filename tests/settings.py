"""Test settings: the production settings with a private data folder and inline tasks.

The data folder is always a fresh temp folder, so a test run can never touch a real archive,
whatever PACS_DATA_DIR says. DATABASE_URL is honoured (CI runs the suite on MariaDB too);
Django creates and drops its own `test_...` database there.
"""

import atexit
import os
import shutil
import tempfile

_data_dir = tempfile.mkdtemp(prefix="pacs-test-")
atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ["PACS_DATA_DIR"] = _data_dir
os.environ["PACS_TASKS_SYNC"] = "true"
for _shared in ("PACS_STORAGE_DIR", "PACS_SHARED_DIR", "PACS_NODE_NAME"):  # never a real archive's folders
    os.environ.pop(_shared, None)

from pacsone.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, not memory: server processes started by the tests must see the same database.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_data_dir, "test.sqlite3")}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns otherwise)
