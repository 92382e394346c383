"""What recorded functions share when they are fingerprinted in one process (issue 15).

Each module is read and parsed once per process and a helper's digest is computed once and
shared by every recorded function that reaches it. These tests check that the sharing never
hides a change: an edited helper misses for every function that uses it and only for them, a
helper reassigned or given new code at run time, or reloaded from a changed file, is seen by
functions first called afterwards, exactly as a fresh process sees it. They run real
subprocesses, as a user's test run does.
"""

from __future__ import annotations

import json
import textwrap

from tests.conftest import Project, last_json

SHARED = '''
    def even(n):
        return True if n == 0 else odd(n - 1)


    def odd(n):
        return False if n == 0 else even(n - 1)


    def normalize(text):
        return text.strip().lower() + ("!" if even(len(text)) else "?")
'''

FIRST = '''
    import shared
    from memo_replay import recorded


    @recorded
    def first(text):
        return "first:" + shared.normalize(text)
'''

SECOND = '''
    import shared
    from memo_replay import recorded


    @recorded
    def second(text):
        return "second:" + shared.normalize(text)
'''

BOTH = '''
    import json
    from memo_replay import ReplayMiss
    from first import first
    from second import second

    outcomes = {}
    for fn in (first, second):
        try:
            fn(" Some Text ")
            outcomes[fn.__name__] = "hit"
        except ReplayMiss:
            outcomes[fn.__name__] = "miss"
    print(json.dumps(outcomes))
'''


def _shared_project(project: Project) -> None:
    project.write("shared.py", SHARED)
    project.write("first.py", FIRST)
    project.write("second.py", SECOND)
    project.run(BOTH, mode="record")


def test_two_functions_sharing_a_helper_share_its_digest(project: Project) -> None:
    _shared_project(project)
    result = project.run('''
        import json
        from first import first
        from second import second

        a, b = first.memo.code, second.memo.code
        print(json.dumps({"a": dict(a.helpers), "b": dict(b.helpers)}))
    ''', mode="replay")
    helpers = last_json(result.stdout)
    # The mutually recursive helpers are both there, for both functions, with one digest each.
    assert set(helpers["a"]) == set(helpers["b"]) == {"shared.normalize", "shared.even",
                                                       "shared.odd"}
    assert helpers["a"] == helpers["b"]


def test_editing_a_shared_helper_misses_every_function_using_it(project: Project) -> None:
    _shared_project(project)
    assert last_json(project.run(BOTH, mode="replay").stdout) == {"first": "hit",
                                                                  "second": "hit"}
    project.replace("shared.py", "return False if n == 0", "return n != 0 and")
    project.replace("shared.py", " else even(n - 1)", " even(n - 1)")
    assert last_json(project.run(BOTH, mode="replay").stdout) == {"first": "miss",
                                                                  "second": "miss"}


def test_editing_one_function_misses_only_it(project: Project) -> None:
    _shared_project(project)
    project.replace("first.py", '"first:"', '"first: "')
    assert last_json(project.run(BOTH, mode="replay").stdout) == {"first": "miss",
                                                                  "second": "hit"}


RUNTIME = '''
    def greet(text):
        return "hello " + text


    def shout(text):
        return "HELLO " + text.upper()
'''

USERS = {
    "one.py": '''
        import runtime
        from memo_replay import recorded


        @recorded
        def one(text):
            return runtime.greet(text)
    ''',
    "two.py": '''
        import runtime
        from memo_replay import recorded


        @recorded
        def two(text):
            return runtime.greet(text)
    ''',
}

FINGERPRINTS = '''
    import json
    import one
    import two
    import runtime

    def code(fn):
        c = fn.memo.code
        return {"hash": c.hash, "helpers": dict(c.helpers)}
'''


def _with_code(snippet: str) -> str:
    """A snippet run after FINGERPRINTS."""
    return textwrap.dedent(FINGERPRINTS) + textwrap.dedent(snippet)


def _runtime_project(project: Project) -> None:
    project.write("runtime.py", RUNTIME)
    for name, text in USERS.items():
        project.write(name, text)


def test_a_helper_reassigned_at_run_time_is_seen_by_functions_first_called_after(
        project: Project) -> None:
    _runtime_project(project)
    result = project.run(_with_code('''
        before = code(one.one)
        runtime.greet = runtime.shout          # monkeypatching a module attribute
        after = code(two.two)
        print(json.dumps({"before": before, "after": after}))
    '''), mode="replay")
    seen = last_json(result.stdout)
    assert "runtime.greet" in seen["before"]["helpers"]
    assert "runtime.shout" in seen["after"]["helpers"]
    assert "runtime.greet" not in seen["after"]["helpers"]
    # Exactly what a fresh process computes for `two` with the patched helper.
    fresh = last_json(project.run(_with_code('''
        runtime.greet = runtime.shout
        print(json.dumps(code(two.two)))
    '''), mode="replay").stdout)
    assert seen["after"] == fresh


def test_a_helper_given_new_code_at_run_time_is_seen(project: Project) -> None:
    _runtime_project(project)
    result = project.run(_with_code('''
        before = code(one.one)
        runtime.greet.__code__ = runtime.shout.__code__  # same function object, new code
        after = code(two.two)
        print(json.dumps({"before": before, "after": after}))
    '''), mode="replay")
    seen = last_json(result.stdout)
    assert seen["before"]["helpers"]["runtime.greet"] != seen["after"]["helpers"]["runtime.greet"]
    assert seen["before"]["hash"] != seen["after"]["hash"]


def test_a_reloaded_helper_module_counts_as_changed_for_functions_first_called_after(
        project: Project) -> None:
    _runtime_project(project)
    result = project.run(_with_code('''
        import importlib
        import pathlib

        before = code(one.one)
        path = pathlib.Path("runtime.py")
        path.write_text(path.read_text().replace('"hello "', '"good day, "'))
        importlib.reload(runtime)
        after = code(two.two)
        print(json.dumps({"before": before, "after": after}))
    '''), mode="replay")
    seen = last_json(result.stdout)
    assert seen["before"]["helpers"]["runtime.greet"] != seen["after"]["helpers"]["runtime.greet"]
    # `two` after the reload is fingerprinted exactly as a fresh process does from the new file.
    fresh = last_json(project.run(_with_code('''
        print(json.dumps(code(two.two)))
    '''), mode="replay").stdout)
    assert seen["after"] == fresh
    # … and `one`, fingerprinted before the reload, as a fresh process did from the old file.
    project.replace("runtime.py", '"good day, "', '"hello "')
    old = last_json(project.run(_with_code('''
        print(json.dumps(code(one.one)))
    '''), mode="replay").stdout)
    assert seen["before"] == old


def test_each_module_is_parsed_once_per_process(project: Project) -> None:
    project.write("pkg/__init__.py", "")
    for n in range(4):
        project.write(f"pkg/helpers{n}.py", f'''
            LIMIT = {n + 3}


            def clip{n}(text):
                return text[:LIMIT]


            def twice{n}(text):
                return clip{n}(text) * 2
        ''')
    for n in range(10):
        a, b = n % 4, (n + 1) % 4
        project.write(f"pkg/use{n}.py", f'''
            from memo_replay import recorded
            from pkg import helpers{a}, helpers{b}


            @recorded
            def use{n}(text):
                return helpers{a}.twice{a}(text) + helpers{b}.clip{b}(text)
        ''')
    call_all = '''
        import ast
        import collections
        import importlib
        import json

        parsed = collections.Counter()
        real_parse = ast.parse

        def counting_parse(source, *args, **kwargs):
            parsed[source if isinstance(source, str) else source.decode()] += 1
            return real_parse(source, *args, **kwargs)

        ast.parse = counting_parse
        from memo_replay.keys import source as source_module

        for n in range(10):
            fn = getattr(importlib.import_module(f"pkg.use{n}"), f"use{n}")
            fn("abcdefgh")
        print(json.dumps({"texts": list(parsed), "counts_by_text": list(parsed.values()),
                          "parses": source_module.parses}))
    '''
    modules = {project.read(f"pkg/helpers{n}.py") for n in range(4)} | \
        {project.read(f"pkg/use{n}.py") for n in range(10)}
    for mode in ("record", "replay"):
        report = last_json(project.run(call_all, mode=mode).stdout)
        counts = dict(zip(report["texts"], report["counts_by_text"], strict=True))
        assert modules <= set(counts), "every module used is read from its source"
        assert {counts[text] for text in modules} == {1}, "each module is parsed once"
        # Everything else parsed is one definition's lines (the module's tree is not kept).
        for text in set(counts) - modules:
            lines = text.removeprefix("if 1:\n")
            assert any(lines in module for module in modules), text
            assert lines.lstrip().startswith(("def ", "class ", "@")), text
        assert report["parses"] == len(modules), json.dumps(report)[:2000]
