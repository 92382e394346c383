"""``Entry.load()`` in a standalone inspection script: the result type's module is imported when
it is a source file of the project (the rule auditing follows), and nothing else ever is — a
standard-library module, a module outside the project, a symlinked file — those keep failing
with the error that says to import the type first. Real projects, real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

MODELS = '''
from pathlib import Path

from pydantic import BaseModel

Path(__file__).with_name("models_imported.log").write_text("imported")


class Item(BaseModel):
    name: str
    tags: set[str]
'''

APP = '''
from memo_replay import recorded

from models import Item


@recorded
def make(name: str) -> Item:
    return Item(name=name, tags={"b", "a"})
'''

INSPECT = '''
import json, sys
from memo_replay import Store
from memo_replay.errors import MemoReplayError

[entry] = Store("fixtures_store").entries()
try:
    value = entry.load()
except MemoReplayError as exc:
    print(json.dumps({"error": str(exc), "modules": sorted(m for m in ("models", "app", "this")
                                                           if m in sys.modules)}))
else:
    print(json.dumps({"type": f"{type(value).__module__}.{type(value).__qualname__}",
                      "name": value.name, "tags": sorted(value.tags),
                      "tags_type": type(value.tags).__name__,
                      "modules": sorted(m for m in ("models", "app") if m in sys.modules)}))
'''


@pytest.fixture
def recorded(project: Project) -> Project:
    """A project with one recording of ``app.make`` returning a ``models.Item``, and an
    inspection script in ``scripts/`` that imports only ``memo_replay``."""
    project.write("models.py", MODELS)
    project.write("app.py", APP)
    project.run("import app; app.make('ada')")
    (project.root / "models_imported.log").unlink()
    project.write("scripts/inspect_store.py", INSPECT)
    return project


def inspect(project: Project, **env: str) -> dict[str, object]:
    """Run the inspection script from ``scripts/`` with only the script's directory on the
    path (``python scripts/x.py`` as a user runs it), the project not importable by itself."""
    environment = project.env(None, env)
    environment.pop("PYTHONPATH", None)
    environment.update(env)
    result = subprocess.run([sys.executable, "inspect_store.py"], cwd=project.root / "scripts",
                            env=environment, capture_output=True, text=True, timeout=120,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def entry_file(project: Project) -> Path:
    [path] = (project.root / "fixtures_store").glob("*/*.json")
    return path


def set_type(project: Project, type_name: str) -> None:
    """Edit the stored result type (outside the payload's checksum), as a pull request may."""
    path = entry_file(project)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["result"]["type"] = type_name
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def test_load_imports_the_result_types_project_module(recorded: Project) -> None:
    out = inspect(recorded)
    assert out == {"type": "models.Item", "name": "ada", "tags": ["a", "b"], "tags_type": "set",
                   "modules": ["models"]}  # the type's module only, not the function's
    assert (recorded.root / "models_imported.log").exists()


def test_load_of_a_generic_type_imports_each_project_module(recorded: Project) -> None:
    recorded.write("pages.py", '''
        from typing import Generic, TypeVar

        from pydantic import BaseModel

        T = TypeVar("T")


        class Page(BaseModel, Generic[T]):
            items: list[T]
    ''')
    recorded.write("app.py", APP + '''

from pages import Page


@recorded
def page() -> Page[Item]:
    return Page[Item](items=[Item(name="x", tags=set())])
''')
    recorded.run("import app; app.page()")
    for path in (recorded.root / "fixtures_store").glob("app.make/*.json"):
        path.unlink()
    recorded.write("scripts/inspect_store.py", '''
        import sys
        from memo_replay import Store

        [entry] = Store("fixtures_store").entries()
        value = entry.load()
        print(type(value).__name__, type(value.items[0]).__name__, "app" in sys.modules)
    ''')
    environment = recorded.env(None)
    environment.pop("PYTHONPATH")
    result = subprocess.run([sys.executable, "inspect_store.py"], cwd=recorded.root / "scripts",
                            env=environment, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.split() == ["Page[Item]", "Item", "False"]


def test_a_symlinked_module_is_never_imported(recorded: Project) -> None:
    models = recorded.root / "models.py"
    real = recorded.root.parent / "outside_models.py"
    models.rename(real)
    models.symlink_to(real)
    out = inspect(recorded)
    assert out["modules"] == []
    assert "module 'models' is not imported" in str(out["error"])
    assert "import the type before replaying" in str(out["error"])
    assert not (recorded.root.parent / "models_imported.log").exists()


def test_a_module_outside_the_project_is_never_imported(
        recorded: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "site"
    elsewhere.mkdir()
    (recorded.root / "models.py").rename(elsewhere / "models.py")
    out = inspect(recorded, PYTHONPATH=str(elsewhere))  # importable, but not project source
    assert out["modules"] == []
    assert "module 'models' is not imported" in str(out["error"])
    assert not (elsewhere / "models_imported.log").exists()


def test_a_standard_library_module_named_by_an_entry_is_never_imported(
        recorded: Project) -> None:
    set_type(recorded, "this:Zen")  # `import this` would print the Zen of Python
    out = inspect(recorded)
    assert out["modules"] == []
    assert "module 'this' is not imported" in str(out["error"])


def test_a_project_module_that_fails_to_import_keeps_the_clear_error(
        recorded: Project) -> None:
    recorded.write("models.py", "raise RuntimeError('boom')\n")
    out = inspect(recorded)
    assert "module 'models' is not imported" in str(out["error"])
