"""The access functions are the only gate (DESIGN.md invariant 2): a test that reads the code
of every page and API module and fails when one reaches patient data directly, bypassing
pacsone/access.py (`Study.objects`, `get_object_or_404(Study, ...)`, `.visible_to(...)`, the
visibility rule's own functions)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PATIENT_MODELS = {"Patient", "Study", "Series", "Instance", "Note", "Attachment", "Job"}
MANAGERS = {"objects", "_default_manager", "_base_manager"}
LOOKUPS = {"get_object_or_404", "get_list_or_404"}
# Pages and APIs: every module of pacsone/web and pacsone/api, the views and APIs of the apps.
SCANNED = [*sorted((ROOT / "pacsone" / "web").glob("*.py")), *sorted((ROOT / "pacsone" / "api").glob("*.py")),
           *[ROOT / app / f"{name}.py" for app in ("accounts", "audit", "routing") for name in ("views", "api")]]


def bypasses(source: str) -> list[str]:
    """Where `source` reaches patient data without pacsone.access: 'line: what'."""
    tree = ast.parse(source)
    models = set(PATIENT_MODELS)  # names bound to a patient-data model, aliases included
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            models.update(alias.asname or alias.name for alias in node.names if alias.name in PATIENT_MODELS)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("visibility"):
            found.append(f"{node.lineno}: imports the visibility rule; use pacsone.access")
        elif isinstance(node, ast.Attribute) and node.attr in MANAGERS and isinstance(node.value, ast.Name) \
                and node.value.id in models:
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr == "visible_to":
            found.append(f"{node.lineno}: .visible_to(); use pacsone.access")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in LOOKUPS:
            first = node.args[0] if node.args else None
            # Only a plain model that holds no patient data (a remote AE, a user) may be looked up so.
            if not isinstance(first, ast.Name) or first.id in models:
                found.append(f"{node.lineno}: {node.func.id}() on patient data; use pacsone.access")
    return found


def test_the_scan_covers_the_pages_and_apis():
    names = {str(path.relative_to(ROOT)) for path in SCANNED if path.exists()}
    assert {"pacsone/web/studies.py", "pacsone/api/archive.py", "routing/views.py", "audit/api.py"} <= names


def test_no_page_or_api_module_reaches_patient_data_directly():
    problems = [f"{path.relative_to(ROOT)}:{line}" for path in SCANNED if path.exists()
                for line in bypasses(path.read_text())]
    assert not problems, "reach patient data through pacsone/access.py:\n" + "\n".join(problems)


def test_it_catches_each_way_around_the_gate():
    source = "\n".join([
        "from pacsone.models import Study as S, RemoteAE",
        "from ..visibility import visible_studies",
        "a = S.objects.get(pk=1)",
        "b = get_object_or_404(Instance, pk=1)",
        "c = get_object_or_404(Job.objects.filter(owner=u), pk=1)",
        "d = Patient._default_manager.all()",
        "e = qs.visible_to(user)",
        "f = get_object_or_404(RemoteAE, pk=1)",  # allowed: no patient data
        "g = Note.objects.none()",
    ])
    lines = sorted({int(problem.split(":")[0]) for problem in bypasses(source)})
    assert lines == [2, 3, 4, 5, 6, 7, 9]
