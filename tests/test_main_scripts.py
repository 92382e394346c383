"""A script run as ``python tools/run.py`` and the same module imported are one thing.

Function ids already follow the script's path; the types a recording names (a pydantic result,
a recorded exception) and the types inside keys (a dataclass argument) must too, or a recording
made by running the script would not replay where the module is imported, and back.
"""

from __future__ import annotations

from conftest import Project

SCRIPT = """
    from dataclasses import dataclass

    from pydantic import BaseModel

    from memo_replay import recorded


    @dataclass(frozen=True)
    class Query:
        text: str


    class Node(BaseModel):
        kind: str


    class Refused(Exception):
        pass


    @recorded
    def parse(query: Query) -> Node:
        with open("calls.log", "a") as log:
            log.write(f"parse {query.text}\\n")
        return Node(kind=query.text)


    @recorded(record_exceptions=True)
    def refuse(query: Query) -> Node:
        with open("calls.log", "a") as log:
            log.write(f"refuse {query.text}\\n")
        raise Refused(f"no: {query.text}")


    def main() -> None:
        print(type(parse(Query("expr"))).__name__)
        try:
            refuse(Query("x"))
        except Refused as error:
            print("refused", error)


    if __name__ == "__main__":
        main()
"""


def test_recorded_by_running_the_script_replays_where_it_is_imported(project: Project) -> None:
    project.write("tools/__init__.py", "")
    project.write("tools/run.py", SCRIPT)
    ran = project.run_file("tools/run.py", mode="record")
    assert ran.stdout.split() == ["Node", "refused", "no:", "x"]
    assert project.calls() == ["parse expr", "refuse x"]

    imported = project.run("import tools.run; tools.run.main()", mode="replay")
    assert imported.stdout.split() == ["Node", "refused", "no:", "x"]
    assert project.calls() == ["parse expr", "refuse x"]  # nothing ran again


def test_recorded_where_imported_replays_when_run_as_a_script(project: Project) -> None:
    project.write("tools/__init__.py", "")
    project.write("tools/run.py", SCRIPT)
    project.run("import tools.run; tools.run.main()", mode="record")
    ran = project.run_file("tools/run.py", mode="replay")
    assert ran.stdout.split() == ["Node", "refused", "no:", "x"]
    assert project.calls() == ["parse expr", "refuse x"]


def test_a_script_whose_path_is_no_module_name_keeps_a_visible_id(project: Project) -> None:
    """A script in a hidden directory (``.venv/…/pytest/__main__.py`` under
    ``python -m pytest``) or with a dash in its name is not importable by its path: its
    functions keep the ``__main__`` id, never one that starts with a dot (a hidden store
    directory that ``entries()``, ``explain()`` and ``ls`` skip) or holds a dash."""
    script = """
        from memo_replay import recorded

        @recorded
        def square(x: int) -> int:
            return x * x

        print(square(3), square.memo.id, len(list(square.memo.entries())))
    """
    project.write(".hidden/run.py", script)
    project.write("tools/run-all.py", script)
    for path in (".hidden/run.py", "tools/run-all.py"):
        out = project.run_file(path, mode="auto").stdout.split()
        assert out == ["9", "__main__.square", "1"], (path, out)
