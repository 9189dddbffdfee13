"""Stored files are reached only through pacsone/storage.py (DESIGN.md: "no other module opens
stored files"): a test that reads every module of the project and fails when one finds a
stored file's place on disk itself: joining a location's folder with an instance's relative
path, asking the database for a location's folder beside a file path, or calling the
storage module's path builder. What cannot name a stored file's place cannot open it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
APPS = ("pacsone", "accounts", "audit", "routing", "hl7")
INTERFACE = ROOT / "pacsone" / "storage.py"
# Files that are not in a storage location: a note's attachments live in the data folder's
# attachments/ (pacsone/notes.py joins that folder with Attachment.file_path).
NOT_STORED_FILES = {ROOT / "pacsone" / "notes.py"}
PATH_BUILDERS = {"absolute_path", "instance_path"}
OPENERS = {"open", "dcmread", "FileResponse", "Path", "join"}


def scanned() -> list[Path]:
    files = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or path == INTERFACE or path in NOT_STORED_FILES:
                continue
            files.append(path)
    return files


def _mentions_file_path(node: ast.AST) -> bool:
    return any(isinstance(sub, ast.Attribute) and sub.attr == "file_path"
               or isinstance(sub, ast.Constant) and sub.value == "file_path"
               for sub in ast.walk(node))


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def bypasses(source: str) -> list[str]:
    """Where `source` reaches a stored file without pacsone.storage: 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PATH_BUILDERS \
                or isinstance(node, ast.Name) and node.id in PATH_BUILDERS:
            found.append(f"{node.lineno}: builds a stored file's path; use storage.open_stored/read_range")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "storage_location__path" in node.value:
            found.append(f"{node.lineno}: reads a location's folder from the database")
        elif isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "storage_location":
            found.append(f"{node.lineno}: .storage_location.path")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _mentions_file_path(node.right):
            found.append(f"{node.lineno}: joins a folder with a stored file's relative path")
        elif isinstance(node, ast.Call) and _called_name(node) in OPENERS \
                and any(_mentions_file_path(arg) for arg in node.args):
            found.append(f"{node.lineno}: {_called_name(node)}() of a stored file's relative path")
    return found


def test_the_scan_covers_every_module_that_reads_stored_files():
    names = {str(path.relative_to(ROOT)) for path in scanned()}
    assert {"pacsone/rendering.py", "pacsone/export.py", "pacsone/download.py", "pacsone/editing.py",
            "pacsone/dicom/qr.py", "pacsone/dicom/scu.py", "pacsone/dicom/net/sending.py", "pacsone/forward.py",
            "pacsone/verification.py", "pacsone/deletion.py", "pacsone/ingest.py", "routing/purge.py",
            "pacsone/change_storage.py"} <= names
    assert "pacsone/storage.py" not in names


def test_no_module_reaches_stored_files_around_the_storage_interface():
    problems = [f"{path.relative_to(ROOT)}:{line}" for path in scanned() for line in bypasses(path.read_text())]
    assert not problems, "read stored files through pacsone/storage.py:\n" + "\n".join(problems)


def test_it_catches_each_way_around_the_interface():
    source = "\n".join([
        "p = storage.absolute_path(i.storage_location, i.file_path)",
        "rows = qs.values('pk', 'storage_location__path', 'file_path')",
        "folder = instance.storage_location.path",
        "full = Path(folder) / instance.file_path",
        "f = open(os.path.join(root, row['file_path']), 'rb')",
        "ds = dcmread(location_folder + instance.file_path)",
        "with storage.open_stored(instance) as f: ds = dcmread(f)",  # allowed: the interface
        "data = storage.read_range(instance, 0, 132)",  # allowed
        "p = rendering.instance_path(instance)",
        "name = instance.file_path",  # allowed: reading the index is not opening the file
    ])
    lines = sorted({int(problem.split(":")[0]) for problem in bypasses(source)})
    assert lines == [1, 2, 3, 4, 5, 6, 9]
