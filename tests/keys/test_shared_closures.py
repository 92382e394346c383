"""A helper's walk is shared by every recorded function that reaches it (issue 15), and the
sharing never makes a key stale.

What a helper reaches, transitively, is computed once per process and kept; a later recorded
function reuses it only while every lookup it made (globals, module and class attributes,
closure cells, ``__code__``, lazy imports, the statements binding a name) finds the very same
object again, and every mutable constant encodes the same. Each test here computes one recorded
function's fingerprint (so the shared helpers' closures are kept), changes something at run time
— as monkeypatching does — and computes a second function's fingerprint for the first time: it
must be exactly what a fresh process that made the same change computes, and differ from the
unchanged fingerprint whenever the change is one the key covers. Real files, real imports, fresh
interpreters.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from tests.conftest import Project, last_json

SHARED = '''
    LIMIT = 3
    TABLE = {"a": 1}
    UNUSED = 0


    def inner(text):
        return text[:LIMIT] + str(TABLE)


    def helper(text):
        return inner(text).upper()


    class Fmt:
        def render(self, text):
            return "<" + text + ">"


    def styled(text):
        return Fmt().render(text)


    def _make():
        suffix = "!"

        def closed(text):
            return text + suffix

        def set_suffix(value):
            nonlocal suffix
            suffix = value

        return closed, set_suffix


    closed, set_suffix = _make()


    def lazy(text):
        from lazypkg import impl
        return impl.run(text)
'''

ALT = '''
    def inner(text):
        return text


    def render(self, text):
        return "[" + text + "]"


    def run(text):
        return text * 2
'''

RECORDED = '''
    import shared
    from memo_replay import recorded


    @recorded
    def {name}(text):
        return (shared.helper(text) + shared.styled(text) + shared.closed(text)
                + shared.lazy(text))
'''

CODE = '''
    import json
    import sys

    import alt
    import first
    import lazypkg
    import second
    import shared
    import third


    def code(fn):
        c = fn.memo.code
        return {"hash": c.hash, "helpers": dict(c.helpers), "constants": dict(c.constants),
                "definitions": dict(c.definitions)}
'''

CHANGES = {
    # A global two calls down (recorded → helper → inner) rebound to another function.
    "rebind a global": "shared.inner = alt.inner",
    "rebind a constant": "shared.LIMIT = 4",
    "mutate a dict constant": 'shared.TABLE["b"] = 2',
    "new code for a helper": "shared.inner.__code__ = alt.inner.__code__",
    "replace a method": "shared.Fmt.render = alt.render",
    "rebind a closure cell": 'shared.set_suffix("?")',
    "rebind what a lazy import finds": "lazypkg.impl = alt",
}

UNCOUNTED = {
    "rebind a global to itself": "shared.inner = shared.inner",
    "rebind an unread global": "shared.UNUSED = 5",
    "add an unread global": "shared.NEW = 1",
}


def _project(project: Project) -> None:
    project.write("shared.py", SHARED)
    project.write("alt.py", ALT)
    project.write("lazypkg/__init__.py", "")
    project.write("lazypkg/impl.py", '''
        def run(text):
            return text
    ''')
    for name in ("first", "second", "third"):
        project.write(f"{name}.py", RECORDED.replace("{name}", name))


def _run(project: Project, snippet: str) -> Any:
    return last_json(project.run(textwrap.dedent(CODE) + textwrap.dedent(snippet),
                                 mode="replay").stdout)


@pytest.fixture
def shared_project(project: Project) -> Project:
    _project(project)
    return project


@pytest.mark.parametrize("change", sorted(CHANGES), ids=str)
def test_a_change_made_after_a_shared_walk_is_seen_by_the_next_function(
        shared_project: Project, change: str) -> None:
    statement = CHANGES[change]
    seen = _run(shared_project, f'''
        before = code(first.first)     # walks and keeps the shared helpers' closures
        {statement}
        after = code(second.second)    # first computed now: must see the change
        print(json.dumps({{"before": before, "after": after}}))
    ''')
    fresh = _run(shared_project, f'''
        {statement}
        print(json.dumps(code(second.second)))
    ''')
    unchanged = _run(shared_project, "print(json.dumps(code(second.second)))")
    assert seen["after"] == fresh, "exactly what a fresh process computes"
    assert seen["after"]["hash"] != unchanged["hash"], f"{change} must change the key"
    # The first function's fingerprint was computed before the change: it stays as it was.
    first_unchanged = _run(shared_project, "print(json.dumps(code(first.first)))")
    assert seen["before"] == first_unchanged


@pytest.mark.parametrize("change", sorted(UNCOUNTED), ids=str)
def test_a_change_nothing_reads_keeps_the_key(shared_project: Project, change: str) -> None:
    seen = _run(shared_project, f'''
        code(first.first)
        {UNCOUNTED[change]}
        print(json.dumps(code(second.second)))
    ''')
    unchanged = _run(shared_project, "print(json.dumps(code(second.second)))")
    assert seen == unchanged


def test_changes_undone_before_the_next_first_call_leave_no_trace(
        shared_project: Project) -> None:
    """Changed and changed back between two first calls: the second function is keyed by the
    world at its own first call (the shared closures were recomputed, then match again)."""
    seen = _run(shared_project, '''
        original_inner, original_render = shared.inner, shared.Fmt.render
        code(first.first)
        shared.inner, shared.Fmt.render = alt.inner, alt.render
        shared.TABLE["b"] = 2
        changed = code(second.second)
        shared.inner, shared.Fmt.render = original_inner, original_render
        del shared.TABLE["b"]
        print(json.dumps({"changed": changed, "back": code(third.third)}))
    ''')
    unchanged = _run(shared_project, "print(json.dumps(code(third.third)))")
    assert seen["back"] == unchanged
    assert seen["changed"]["hash"] != unchanged["hash"]
    assert "alt.inner" in seen["changed"]["helpers"]
    assert "shared.inner" not in seen["changed"]["helpers"]


def test_editing_a_helper_two_calls_down_misses_both_functions(
        shared_project: Project) -> None:
    both = '''
        print(json.dumps({"first": code(first.first), "second": code(second.second)}))
    '''
    before = _run(shared_project, both)
    shared_project.replace("shared.py", "return text[:LIMIT] + str(TABLE)",
                           "return text[:LIMIT] + repr(TABLE)")
    after = _run(shared_project, both)
    assert before["first"]["hash"] != after["first"]["hash"]
    assert before["second"]["hash"] != after["second"]["hash"]
    assert before["first"]["helpers"]["shared.inner"] != after["first"]["helpers"]["shared.inner"]
    # Shared or not, both functions see the same digest of the same helper.
    assert after["first"]["helpers"] == after["second"]["helpers"]


def test_sharing_does_not_depend_on_the_order_of_first_calls(tmp_path: Any) -> None:
    """In the generated 100-module project of ``benchmarks/first_call.py`` (helpers shared by
    many recorded functions, classes, constants, regexes, transitive imports), every recorded
    function's fingerprint is the same whichever functions were fingerprinted before it in the
    process — in the generator's order, in reverse, or alone."""
    from benchmarks.first_call import generate

    functions = generate(tmp_path)
    runner = Project(tmp_path)
    snippet = '''
        import importlib, json, sys
        from memo_replay.keys import walk
        names = json.loads(sys.argv[1])
        if len(sys.argv) > 2:  # no closures at all: every helper walked in place, as before
            walk._NESTED = 0
        out = {}
        for spec in names:
            module, name = spec.split(":")
            c = getattr(importlib.import_module(module), name).memo.code
            out[spec] = [c.hash, dict(c.helpers), dict(c.constants), dict(c.definitions)]
        print(json.dumps(out))
    '''
    forward = last_json(runner.run(snippet, mode="replay",
                                   args=(json.dumps(functions),)).stdout)
    backward = last_json(runner.run(snippet, mode="replay",
                                    args=(json.dumps(functions[::-1]),)).stdout)
    assert forward == backward
    unshared = last_json(runner.run(snippet, mode="replay",
                                    args=(json.dumps(functions), "unshared")).stdout)
    assert unshared == forward
    for spec in functions[::12]:
        alone = last_json(runner.run(snippet, mode="replay", args=(json.dumps([spec]),)).stdout)
        assert alone[spec] == forward[spec], spec
    assert len({tuple(sorted(v[1])) for v in forward.values()}) > 1
    assert all(len(v[1]) > 10 for v in forward.values()), "helpers reached transitively"


MEMBERS = '''
    class Widget:
        def render(self):
            return "r"

        def other(self):
            return "o"


    def make():
        return Widget()


    def show(thing):
        return thing.render()
'''


@pytest.mark.parametrize("body", [
    "return shared.make().render()",          # class reached in a helper, method named here
    "return shared.show(shared.Widget())",    # class reached here, method named in a helper
])
def test_a_method_counts_wherever_its_class_and_its_name_are_reached(
        project: Project, body: str) -> None:
    """Merging a helper's closure also counts the methods of the classes it reached that code
    outside it names, and the other way round — as one walk of everything would."""
    project.write("shared.py", MEMBERS)
    for name in ("warm", "target"):
        project.write(f"{name}.py", f'''
            import shared
            from memo_replay import recorded


            @recorded
            def {name}():
                {body if name == "target" else "return shared.make(), shared.show"}
        ''')
    snippet = '''
        import json, sys
        import target, warm
        if sys.argv[1] == "warm":
            warm.warm.memo.code          # the helpers' closures are kept first
        print(json.dumps(dict(target.target.memo.code.helpers)))
    '''
    warmed = last_json(project.run(snippet, mode="replay", args=("warm",)).stdout)
    alone = last_json(project.run(snippet, mode="replay", args=("alone",)).stdout)
    assert warmed == alone
    assert "shared.Widget.render" in warmed
    assert "shared.Widget.other" not in warmed
    project.replace("shared.py", 'return "r"', 'return "R"')
    edited = last_json(project.run(snippet, mode="replay", args=("warm",)).stdout)
    assert edited["shared.Widget.render"] != warmed["shared.Widget.render"]


def test_a_recorded_function_reached_back_through_a_shared_helper_is_not_its_own_helper(
        project: Project) -> None:
    project.write("loop.py", '''
        from memo_replay import recorded


        @recorded
        def countdown(n):
            return 0 if n == 0 else step(n)


        def step(n):
            return countdown(n - 1)


        @recorded
        def other(n):
            return step(n)
    ''')
    snippet = '''
        import json, sys
        import loop
        if sys.argv[1] == "warm":
            loop.other.memo.code         # keeps step's closure, which reaches countdown
        print(json.dumps(dict(loop.countdown.memo.code.helpers)))
    '''
    warmed = last_json(project.run(snippet, mode="replay", args=("warm",)).stdout)
    alone = last_json(project.run(snippet, mode="replay", args=("alone",)).stdout)
    assert warmed == alone
    assert set(warmed) == {"loop.step"}


def test_two_helpers_with_one_name_are_keyed_as_one_walk_keys_them(project: Project) -> None:
    """Module-level lambdas are all called ``<lambda>``: which digest counts for the name is the
    one the walk reaches last. Merging closures could pick another, so such a fingerprint is
    computed by one walk of everything — whatever was fingerprinted before."""
    project.write("helpers.py", '''
        STRIP = lambda s: s.strip()
        LOWER = lambda s: s.lower()


        def clean(s):
            return LOWER(STRIP(s))


        def shout(s):
            return STRIP(s).upper()


        def x(s):
            return LOWER(s)


        def y(s):
            return STRIP(x(s))
    ''')
    # `two` reaches LOWER through x, then STRIP and x again through y: one walk counts STRIP
    # last (x was walked already), the merged closures would count LOWER last.
    for name, body in (("one", "helpers.shout(s)"), ("two", "helpers.x(s) + helpers.y(s)")):
        project.write(f"{name}.py", f'''
            import helpers
            from memo_replay import recorded


            @recorded
            def {name}(s):
                return {body}
        ''')
    snippet = '''
        import json, sys
        from memo_replay.keys import walk
        import one, two
        if sys.argv[1] == "unshared":
            walk._NESTED = 0
        if sys.argv[1] == "warm":
            one.one.memo.code
        c = two.two.memo.code
        print(json.dumps([c.hash, dict(c.helpers)]))
    '''
    runs = {how: last_json(project.run(snippet, mode="replay", args=(how,)).stdout)
            for how in ("warm", "alone", "unshared")}
    assert runs["warm"] == runs["alone"] == runs["unshared"]
    assert "helpers.<lambda>" in runs["alone"][1]
