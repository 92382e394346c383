"""The edit corpus: small real projects, one-line edits, and what each edit must do to a recording.

Each case writes a project from a template, records one call in a fresh interpreter
(``MEMO_MODE=record``), applies one edit (or changes the environment), and replays the same call
strictly in another fresh interpreter (``MEMO_MODE=replay``). The edit must either KEEP the
recording (a cosmetic edit: comments, docstrings, formatting, an unrelated function) or
INVALIDATE it (the replay raises ``ReplayMiss``, and its explanation names what changed).

The same table drives ``tests/keys/test_edit_corpus.py`` (memo_replay) and
``benchmarks/edit_corpus.py`` (memo_replay against ``joblib.Memory``). For joblib, the templates'
``from memo_replay import recorded`` is replaced by a small shim around ``joblib.Memory.cache``,
and whether the function body ran on the second call is what "invalidate" means.

A case with ``blind_spot`` set is a known limitation: the right answer is ``expected``, memo_replay
gives the other one today, and the test pins today's answer so a change of behaviour is noticed.
A case with ``needs`` set depends on a part of issue 12's work; one that also has ``failing`` set
fails today, and the test marks it ``xfail(strict=True)`` until that work lands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Expected = Literal["keep", "invalidate"]
Tool = Literal["memo_replay", "joblib"]

KEEP: Expected = "keep"
INVALIDATE: Expected = "invalidate"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in ``path`` (every occurrence when ``count`` is -1); with
    ``old`` None, write ``new`` as the file's whole content."""

    path: str
    old: str | None
    new: str
    count: int = 1


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    template: str
    call: str
    """An expression, evaluated after importing ``imports`` (by default, the module the
    expression starts with)."""
    edits: tuple[Edit, ...]
    expected: Expected
    names: tuple[str, ...] = ()
    """For INVALIDATE: the miss explanation must contain one of these (the changed component)."""
    env_before: Mapping[str, str] = field(default_factory=dict)
    env_after: Mapping[str, str] = field(default_factory=dict)
    needs: str | None = None
    """The part of issue 12's work this case depends on (for people and the benchmark)."""
    failing: bool = False
    """memo_replay fails it today, while that work is in progress: ``xfail(strict=True)``."""
    blind_spot: str | None = None
    """A documented limitation: memo_replay gives the other answer than ``expected``."""
    imports: tuple[str, ...] = ()
    """Modules the call needs imported."""


# -- the projects ---------------------------------------------------------------------------------

TEMPLATES: dict[str, dict[str, str]] = {
    # A translator: body, parameters, helpers (direct, module attribute, nested), constants.
    "translator": {
        "app.py": '''
            from memo_replay import recorded

            import prompts
            import text
            from prompts import SUFFIX
            from text import clean

            LIMIT = 3
            STOP = ("end", "stop")
            OPTIONS = {"temperature": 0.2, "top_p": 0.9}
            UNUSED = "not read by translate"


            @recorded
            def translate(source: str, model: str = "small", retries: int = 2) -> str:
                """Translate `source` with the model."""
                # normalise first
                body = clean(source)
                seen: list = []
                words = body.split()[:LIMIT]
                prompt = prompts.TEMPLATE.format(text=" ".join(words))
                settings = ",".join(f"{k}={v}" for k, v in OPTIONS.items())
                tail = [w for w in words if w not in STOP]
                seen.append(model)
                return f"{model}:{retries}:{prompt}|{settings}|{text.shout(' '.join(tail))}{SUFFIX}"
        ''',
        "prompts.py": '''
            TEMPLATE = "Translate: {text}"
            SUFFIX = "."
        ''',
        "text.py": '''
            def clean(value: str) -> str:
                return " ".join(value.split()).lower()


            def shout(value: str) -> str:
                return _bang(value.upper())


            def _bang(value: str) -> str:
                return value + "!"


            def unrelated(value: str) -> str:
                return value[::-1]
        ''',
    },
    # Falsy literals in a default and in the body.
    "falsy": {
        "app.py": '''
            from memo_replay import recorded


            @recorded
            def pad(text: str, n=0) -> str:
                fill = False
                empty = ""
                nothing = None
                return f"{text}{n}{fill}{empty}{nothing}"
        ''',
    },
    # A recorded function made by a factory: its closure values count.
    "closures": {
        "app.py": '''
            from memo_replay import recorded

            import text


            def make(suffix, transform, times):
                @recorded
                def tag(value: str) -> str:
                    return transform(value) * times + suffix
                return tag


            TAG = make("!", text.clean, 2)
        ''',
        "text.py": '''
            def clean(value: str) -> str:
                return value.strip()
        ''',
    },
    # Helpers wrapped by project decorators, and a decorator factory's argument.
    "decorators": {
        "deco.py": '''
            import functools


            def loud(fn):
                @functools.wraps(fn)
                def wrapper(*args, **kwargs):
                    return fn(*args, **kwargs).upper()
                return wrapper


            def repeat(times):
                def decorate(fn):
                    @functools.wraps(fn)
                    def wrapper(*args, **kwargs):
                        return " ".join(fn(*args, **kwargs) for _ in range(times))
                    return wrapper
                return decorate
        ''',
        "helpers.py": '''
            from deco import loud, repeat

            TIMES = 2


            @loud
            def greet(name: str) -> str:
                return "hi " + name


            @repeat(TIMES)
            def echo(name: str) -> str:
                return name
        ''',
        "app.py": '''
            from memo_replay import recorded

            from helpers import echo, greet


            @recorded
            def hello(name: str) -> str:
                return greet(name) + "/" + echo(name)
        ''',
    },
    # Methods reached through self, super() and type(self), in a recorded method.
    "methods": {
        "shapes.py": '''
            import dataclasses

            from memo_replay import recorded


            @dataclasses.dataclass(frozen=True)
            class Base:
                name: str = "p"

                def step(self, x: str) -> str:
                    return x.strip()

                def finish(self, x: str) -> str:
                    return x + "."

                @staticmethod
                def suffix() -> str:
                    return "!"

                @classmethod
                def prefix(cls) -> str:
                    return "<" + cls.__name__ + ">"

                def unrelated(self) -> str:
                    return "u"


            @dataclasses.dataclass(frozen=True)
            class Pipeline(Base):
                def finish(self, x: str) -> str:
                    return super().finish(x) + ";"

                @recorded
                def run(self, x: str) -> str:
                    return self.prefix() + self.finish(self.step(x)) + type(self).suffix()
        ''',
    },
    # Instances: module-level, held in a class attribute, callable.
    "instances": {
        "fmt.py": '''
            WIDTH = 10


            class Formatter:
                def __init__(self, width: int) -> None:
                    self.width = width

                def render(self, x: str) -> str:
                    return x.ljust(self.width, ".")

                def unrelated(self) -> int:
                    return 0


            class Normalizer:
                def __call__(self, x: str) -> str:
                    return x.strip()


            FORMATTER = Formatter(width=WIDTH)
            NORMALIZE = Normalizer()
        ''',
        "app.py": '''
            import dataclasses

            from memo_replay import recorded

            from fmt import FORMATTER, NORMALIZE, Formatter


            @recorded
            def show(x: str) -> str:
                return FORMATTER.render(NORMALIZE(x))


            @recorded
            def show_fresh(x: str) -> str:
                return Formatter(3).render(x)


            @dataclasses.dataclass(frozen=True)
            class Report:
                FMT = Formatter(width=4)
                title: str = "r"

                @recorded
                def build(self, x: str) -> str:
                    return self.title + self.FMT.render(x)
        ''',
    },
    # Globals with no canonical value encoding.
    "globals": {
        "app.py": r'''
            import re
            import string
            import types

            from memo_replay import recorded

            PATTERN = re.compile(r"\s+")
            CONFIG = types.SimpleNamespace(sep="-", upper=False)
            GREETING = string.Template("hello $name")


            def _strip(x: str) -> str:
                return x.strip()


            def _upper(x: str) -> str:
                return x.upper()


            HANDLERS = {"strip": _strip, "upper": _upper, "rev": lambda x: x[::-1]}


            @recorded
            def normalize(x: str, how: str = "strip") -> str:
                y = PATTERN.sub(CONFIG.sep, x)
                return GREETING.substitute(name=HANDLERS[how](y))
        ''',
    },
    # Imports inside the function body.
    "lazy": {
        "pkg/__init__.py": "",
        "pkg/core.py": '''
            from memo_replay import recorded


            @recorded
            def summarize(x: str) -> str:
                from .lazy import helper
                from . import settings
                return helper(x) + settings.TAIL
        ''',
        "pkg/lazy.py": '''
            def helper(x: str) -> str:
                return x[:5]


            def other(x: str) -> str:
                return x
        ''',
        "pkg/settings.py": '''
            TAIL = "..."
        ''',
    },
    # A project class passed as an argument: a structured-output schema.
    "schemas": {
        "schemas.py": '''
            import dataclasses

            from pydantic import BaseModel, Field


            class Invoice(BaseModel):
                number: str = Field(description="the invoice number")
                total: float


            @dataclasses.dataclass
            class Row:
                name: str
                size: int = 0
        ''',
        "app.py": '''
            from memo_replay import recorded


            @recorded
            def extract(text: str, schema: type) -> str:
                return text + " as " + schema.__name__
        ''',
    },
    # Files declared with files=, and files read without it.
    "files": {
        "examples/door.dy": 'machine "Door"\nstate closed\nstate open\n',
        "examples/notes.txt": "unrelated notes\n",
        "../outside-data.txt": "outside the project\n",
        "app.py": '''
            from pathlib import Path

            from memo_replay import recorded


            @recorded(files=["{path}"])
            def translate_file(path: str) -> str:
                return Path(path).read_text().upper()


            @recorded(files=["examples/*.dy"])
            def index() -> str:
                return ",".join(sorted(p.name for p in Path("examples").glob("*.dy")))


            @recorded
            def translate_door() -> str:
                with open("examples/door.dy") as fh:
                    return fh.read().upper()


            @recorded
            def read_door() -> str:
                return Path("examples/door.dy").read_text().lower()


            @recorded
            def read_outside() -> str:
                return Path("../outside-data.txt").read_text()
        ''',
    },
    # Code that only runs: a subclass picked at run time, getattr dispatch.
    "dynamic": {
        "plugins.py": '''
            class Step:
                def apply(self, x: str) -> str:
                    return x


            class Loud(Step):
                def apply(self, x: str) -> str:
                    return x.upper()


            class Quiet(Step):
                def apply(self, x: str) -> str:
                    return x.lower()


            def handle_trim(x: str) -> str:
                return x.strip()
        ''',
        "app.py": '''
            from memo_replay import recorded

            import plugins
            from plugins import Step


            @recorded
            def by_subclass(x: str, kind: str) -> str:
                for sub in Step.__subclasses__():
                    if sub.__name__.lower() == kind:
                        return sub().apply(x)
                return x


            @recorded
            def by_name(x: str, kind: str) -> str:
                return getattr(plugins, kind.title())().apply(x)


            @recorded
            def by_handler(x: str, how: str) -> str:
                return getattr(plugins, "handle_" + how)(x)
        ''',
    },
    # Environment variables (a documented blind spot).
    "env": {
        "app.py": '''
            import os

            from memo_replay import recorded


            def _greeting() -> str:
                return os.getenv("GREETING", "hi")


            @recorded
            def greet(name: str) -> str:
                return os.environ.get("PUNCT", "!") + name


            @recorded
            def greet_helper(name: str) -> str:
                return _greeting() + " " + name
        ''',
    },
}


# -- the edits ------------------------------------------------------------------------------------

def _e(path: str, old: str | None, new: str, count: int = 1) -> tuple[Edit, ...]:
    return (Edit(path, old, new, count),)


_T = "translator"
_TCALL = 'app.translate("Hello  World end")'
_FN = ("`app.translate`",)

_NEEDS_DECORATORS = "issue 12: decorators of helpers and decorator-factory arguments"
_NEEDS_METHODS = "issue 12: type(self)/super() resolution"
_NEEDS_INSTANCES = "issue 12: instances count by their class's fingerprint and definition"
_NEEDS_DEFINITIONS = "issue 12: definition fingerprints of unencodable globals"
_NEEDS_LAZY = "issue 12: imports inside the function body"
_NEEDS_OBSERVED_FILES = "issue 12: observed files"
_NEEDS_OBSERVED_DEPS = "issue 12: observed dependencies"
_NEEDS_MEMBERS = "issue 12: per-member class fingerprints"
_NEEDS_ANNOTATION = "issue 12: a refined local variable annotation is cosmetic"
_NEEDS_DICT_ORDER = ("issue 12: insertion order of a dict constant counts (it changes iteration;"
                       " code.py: encode constants with Encoder(root, ordered=True))")

CASES: tuple[Case, ...] = (
    # function body
    Case("literal", "body", _T, _TCALL, _e("app.py", "[:LIMIT]", "[:LIMIT + 1]"), INVALIDATE, _FN),
    Case("renamed-variable", "body", _T, _TCALL, _e("app.py", "tail", "rest", -1), INVALIDATE,
         _FN),
    Case("new-statement", "body", _T, _TCALL,
         _e("app.py", "    seen: list = []\n", "    seen: list = []\n    body = body.strip()\n"),
         INVALIDATE, _FN),
    Case("operator", "body", _T, _TCALL, _e("app.py", "w not in STOP", "w in STOP"), INVALIDATE,
         _FN),
    Case("f-string", "body", _T, _TCALL,
         _e("app.py", 'f"{model}:{retries}:', 'f"{model};{retries}:'), INVALIDATE, _FN),
    # cosmetic edits of the function
    Case("comment-edited", "cosmetic", _T, _TCALL,
         _e("app.py", "# normalise first", "# normalise the input first"), KEEP),
    Case("comment-added", "cosmetic", _T, _TCALL,
         _e("app.py", "    tail = [", "    # drop the stop words\n    tail = ["), KEEP),
    Case("docstring", "cosmetic", _T, _TCALL,
         _e("app.py", "Translate `source` with the model.", "Translate `source` (any text)."),
         KEEP),
    Case("blank-lines", "cosmetic", _T, _TCALL,
         _e("app.py", "    words = body", "\n    words = body"), KEEP),
    Case("line-breaks", "cosmetic", _T, _TCALL,
         _e("app.py", 'prompts.TEMPLATE.format(text=" ".join(words))',
            'prompts.TEMPLATE.format(\n        text=" ".join(words),\n    )'), KEEP),
    Case("quote-style", "cosmetic", _T, _TCALL,
         _e("app.py", 'text=" ".join(words)', "text=' '.join(words)"), KEEP),
    Case("redundant-parentheses", "cosmetic", _T, _TCALL,
         _e("app.py", "words = body.split()[:LIMIT]", "words = (body.split()[:LIMIT])"), KEEP),
    Case("local-annotation-refined", "cosmetic", _T, _TCALL,
         _e("app.py", "seen: list = []", "seen: list[str] = []"), KEEP,
         needs=_NEEDS_ANNOTATION),
    Case("unrelated-function", "cosmetic", _T, _TCALL,
         _e("text.py", "value[::-1]", "value[::-1].strip()"), KEEP),
    Case("unused-constant", "cosmetic", _T, _TCALL,
         _e("app.py", '"not read by translate"', '"still not read"'), KEEP),
    # defaults and parameters
    Case("default-str", "parameters", _T, _TCALL,
         _e("app.py", 'model: str = "small"', 'model: str = "large"'), INVALIDATE, _FN),
    Case("default-int", "parameters", _T, _TCALL,
         _e("app.py", "retries: int = 2", "retries: int = 3"), INVALIDATE, _FN),
    Case("new-parameter", "parameters", _T, _TCALL,
         _e("app.py", "retries: int = 2)", "retries: int = 2, verbose: bool = False)"),
         INVALIDATE, (*_FN, "argument `verbose`")),
    Case("renamed-parameter", "parameters", _T, _TCALL, _e("app.py", "retries", "attempts", -1),
         INVALIDATE, (*_FN, "argument `attempts`")),
    Case("keyword-only", "parameters", _T, _TCALL,
         _e("app.py", 'model: str = "small"', '*, model: str = "small"'), INVALIDATE, _FN),
    # helpers
    Case("direct-helper", "helpers", _T, _TCALL, _e("text.py", ").lower()", ").casefold()"),
         INVALIDATE, ("`text.clean`",)),
    Case("module-attribute-helper", "helpers", _T, _TCALL,
         _e("text.py", "_bang(value.upper())", "_bang(value.title())"), INVALIDATE,
         ("`text.shout`",)),
    Case("helper-of-helper", "helpers", _T, _TCALL, _e("text.py", 'value + "!"', 'value + "!!"'),
         INVALIDATE, ("`text._bang`",)),
    Case("helper-new-default", "helpers", _T, _TCALL,
         _e("text.py", "def _bang(value: str) -> str:", 'def _bang(value: str, mark="?") -> str:'),
         INVALIDATE, ("`text._bang`",)),
    Case("helper-comment", "helpers", _T, _TCALL,
         _e("text.py", "    return _bang(", "    # shout it\n    return _bang("), KEEP),
    Case("helper-docstring", "helpers", _T, _TCALL,
         _e("text.py", "def clean(value: str) -> str:\n",
            'def clean(value: str) -> str:\n    """One space between words."""\n'), KEEP),
    # constants
    Case("str-constant-of-other-module", "constants", _T, _TCALL,
         _e("prompts.py", "Translate: {text}", "Translate to French: {text}"), INVALIDATE,
         ("`prompts.TEMPLATE`",)),
    Case("constant-imported-by-name", "constants", _T, _TCALL, _e("prompts.py", '"."', '"!"'),
         INVALIDATE, ("`app.SUFFIX`", "`prompts.SUFFIX`")),
    Case("int-constant", "constants", _T, _TCALL, _e("app.py", "LIMIT = 3", "LIMIT = 4"),
         INVALIDATE, ("`app.LIMIT`",)),
    Case("tuple-constant", "constants", _T, _TCALL,
         _e("app.py", '("end", "stop")', '("end", "stop", "halt")'), INVALIDATE, ("`app.STOP`",)),
    Case("dict-constant-value", "constants", _T, _TCALL,
         _e("app.py", '"temperature": 0.2', '"temperature": 0.3'), INVALIDATE, ("`app.OPTIONS`",)),
    Case("dict-constant-new-key", "constants", _T, _TCALL,
         _e("app.py", '"top_p": 0.9}', '"top_p": 0.9, "seed": 1}'), INVALIDATE,
         ("`app.OPTIONS`",)),
    Case("dict-constant-order", "constants", _T, _TCALL,
         _e("app.py", '{"temperature": 0.2, "top_p": 0.9}', '{"top_p": 0.9, "temperature": 0.2}'),
         INVALIDATE, ("`app.OPTIONS`",), needs=_NEEDS_DICT_ORDER),
    Case("constant-quote-style", "constants", _T, _TCALL,
         _e("prompts.py", '"Translate: {text}"', "'Translate: {text}'"), KEEP),
    Case("constant-same-value-respelled", "constants", _T, _TCALL,
         _e("prompts.py", '"Translate: {text}"', '"Translate: " "{text}"'), KEEP),
    # falsy literals
    Case("default-0-to-False", "falsy", "falsy", 'app.pad("x")', _e("app.py", "n=0", "n=False"),
         INVALIDATE, ("`app.pad`",)),
    Case("default-0-to-empty", "falsy", "falsy", 'app.pad("x")', _e("app.py", "n=0", 'n=""'),
         INVALIDATE, ("`app.pad`",)),
    Case("default-0-to-None", "falsy", "falsy", 'app.pad("x")', _e("app.py", "n=0", "n=None"),
         INVALIDATE, ("`app.pad`",)),
    Case("body-False-to-empty", "falsy", "falsy", 'app.pad("x")',
         _e("app.py", "fill = False", 'fill = ""'), INVALIDATE, ("`app.pad`",)),
    Case("body-empty-to-None", "falsy", "falsy", 'app.pad("x")',
         _e("app.py", 'empty = ""', "empty = None"), INVALIDATE, ("`app.pad`",)),
    Case("body-None-to-0", "falsy", "falsy", 'app.pad("x")',
         _e("app.py", "nothing = None", "nothing = 0"), INVALIDATE, ("`app.pad`",)),
    # closures
    Case("closure-str", "closures", "closures", 'app.TAG(" a ")',
         _e("app.py", 'make("!",', 'make("?",'), INVALIDATE, ("suffix`",)),
    Case("closure-int", "closures", "closures", 'app.TAG(" a ")',
         _e("app.py", "text.clean, 2)", "text.clean, 3)"), INVALIDATE, ("times`",)),
    Case("closure-helper", "closures", "closures", 'app.TAG(" a ")',
         _e("text.py", "value.strip()", "value.lstrip()"), INVALIDATE, ("`text.clean`",)),
    Case("closure-factory-comment", "closures", "closures", 'app.TAG(" a ")',
         _e("app.py", "    @recorded\n", "    # the tagger\n    @recorded\n"), KEEP),
    # decorators of helpers
    Case("decorator-wrapper-body", "decorators", "decorators", 'app.hello("ann")',
         _e("deco.py", ".upper()", ".title()"), INVALIDATE, ("`deco.loud", "`helpers.greet`"),
         needs=_NEEDS_DECORATORS),
    Case("decorator-factory-body", "decorators", "decorators", 'app.hello("ann")',
         _e("deco.py", '" ".join', '"-".join'), INVALIDATE, ("`deco.repeat", "`helpers.echo`"),
         needs=_NEEDS_DECORATORS),
    Case("decorator-factory-constant", "decorators", "decorators", 'app.hello("ann")',
         _e("helpers.py", "TIMES = 2", "TIMES = 3"), INVALIDATE, ("`helpers.TIMES`",),
         needs=_NEEDS_DECORATORS),
    Case("decorator-factory-argument", "decorators", "decorators", 'app.hello("ann")',
         _e("helpers.py", "@repeat(TIMES)", "@repeat(TIMES + 1)"), INVALIDATE,
         ("`helpers.echo`",)),
    Case("decorator-removed", "decorators", "decorators", 'app.hello("ann")',
         _e("helpers.py", "@loud\n", ""), INVALIDATE, ("`helpers.greet`",)),
    Case("decorator-module-comment", "decorators", "decorators", 'app.hello("ann")',
         _e("deco.py", "import functools\n", "import functools  # wraps\n"), KEEP),
    # methods: self, super(), type(self), cls
    Case("inherited-method-via-self", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", "x.strip()", "x.lstrip()"), INVALIDATE, ("`shapes.Base.step`",)),
    Case("own-method-via-self", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", '+ ";"', '+ ","'), INVALIDATE, ("`shapes.Pipeline.finish`",)),
    Case("classmethod-via-self", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", '"<" + cls.__name__', '"[" + cls.__name__'), INVALIDATE,
         ("`shapes.Base.prefix`",)),
    Case("super-chain", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", 'return x + "."', 'return x + ".."'), INVALIDATE,
         ("`shapes.Base.finish`",), needs=_NEEDS_METHODS),
    Case("type-self-staticmethod", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", 'return "!"', 'return "?"'), INVALIDATE, ("`shapes.Base.suffix`",),
         needs=_NEEDS_METHODS),
    Case("unrelated-method", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", 'return "u"', 'return "v"'), KEEP),
    Case("method-docstring", "methods", "methods", 'shapes.Pipeline().run(" x ")',
         _e("shapes.py", "    def step(self, x: str) -> str:\n",
            '    def step(self, x: str) -> str:\n        """One step."""\n'), KEEP),
    # instances
    Case("module-instance-method", "instances", "instances", 'app.show(" a ")',
         _e("fmt.py", 'x.ljust(self.width, ".")', 'x.rjust(self.width, ".")'), INVALIDATE,
         ("Formatter.render`", "FORMATTER`"), needs=_NEEDS_INSTANCES),
    Case("module-instance-argument", "instances", "instances", 'app.show(" a ")',
         _e("fmt.py", "Formatter(width=WIDTH)", "Formatter(width=WIDTH + 2)"), INVALIDATE,
         ("FORMATTER`",), needs=_NEEDS_INSTANCES),
    Case("module-instance-constant", "instances", "instances", 'app.show(" a ")',
         _e("fmt.py", "WIDTH = 10", "WIDTH = 12"), INVALIDATE, ("WIDTH`", "FORMATTER`"),
         needs=_NEEDS_INSTANCES),
    Case("callable-instance", "instances", "instances", 'app.show(" a ")',
         _e("fmt.py", "return x.strip()", "return x.lstrip()"), INVALIDATE,
         ("Normalizer`", "Normalizer.__call__`", "NORMALIZE`"), needs=_NEEDS_INSTANCES),
    Case("class-attribute-instance", "instances", "instances", 'app.Report().build(" a ")',
         _e("app.py", "Formatter(width=4)", "Formatter(width=5)"), INVALIDATE,
         ("FMT`", "Report`"), needs=_NEEDS_INSTANCES),
    Case("class-attribute-instance-method", "instances", "instances",
         'app.Report().build(" a ")',
         _e("fmt.py", 'x.ljust(self.width, ".")', 'x.rjust(self.width, ".")'), INVALIDATE,
         ("Formatter.render`", "FMT`"), needs=_NEEDS_INSTANCES),
    Case("unrelated-method-of-instance-class", "instances", "instances", 'app.show(" a ")',
         _e("fmt.py", "return 0", "return 1"), KEEP, needs=_NEEDS_MEMBERS),
    Case("unrelated-method-of-used-class", "instances", "instances", 'app.show_fresh(" a ")',
         _e("fmt.py", "return 0", "return 1"), KEEP, needs=_NEEDS_MEMBERS),
    Case("used-method-of-used-class", "instances", "instances", 'app.show_fresh(" a ")',
         _e("fmt.py", 'x.ljust(self.width, ".")', 'x.rjust(self.width, ".")'), INVALIDATE,
         ("Formatter",)),
    # globals with no canonical value encoding
    Case("compiled-regex", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", r're.compile(r"\s+")', r're.compile(r"\s")'), INVALIDATE, ("PATTERN`",),
         needs=_NEEDS_DEFINITIONS),
    Case("compiled-regex-flags", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", r're.compile(r"\s+")', r're.compile(r"\s+", re.ASCII)'), INVALIDATE,
         ("PATTERN`",), needs=_NEEDS_DEFINITIONS),
    Case("namespace-config", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", 'sep="-"', 'sep="_"'), INVALIDATE, ("CONFIG`",),
         needs=_NEEDS_DEFINITIONS),
    Case("string-template", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", '"hello $name"', '"hi $name"'), INVALIDATE, ("GREETING`",),
         needs=_NEEDS_DEFINITIONS),
    Case("dispatch-table-function", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", "return x.strip()", "return x.lstrip()"), INVALIDATE,
         ("`app._strip`", "HANDLERS`"), needs=_NEEDS_DEFINITIONS),
    Case("dispatch-table-lambda", "globals", "globals", 'app.normalize(" a  b ", how="rev")',
         _e("app.py", "x[::-1]", "x[::-1].strip()"), INVALIDATE, ("HANDLERS`", "lambda"),
         needs=_NEEDS_DEFINITIONS),
    Case("regex-quote-style", "globals", "globals", 'app.normalize(" a  b ")',
         _e("app.py", r're.compile(r"\s+")', r"re.compile(r'\s+')"), KEEP,
         needs=_NEEDS_DEFINITIONS),
    Case("dispatch-table-formatting", "globals", "globals", 'app.normalize(" a  b ", how="rev")',
         _e("app.py", '"rev": lambda x: x[::-1]}', '"rev": lambda x: (x[::-1]),\n}'), KEEP,
         needs=_NEEDS_DEFINITIONS),
    # lazy imports
    Case("lazy-relative-helper", "lazy imports", "lazy", 'pkg.core.summarize("abcdefgh")',
         _e("pkg/lazy.py", "x[:5]", "x[:6]"), INVALIDATE, ("`pkg.lazy.helper`",),
         needs=_NEEDS_LAZY, imports=("pkg.core",)),
    Case("lazy-module-constant", "lazy imports", "lazy", 'pkg.core.summarize("abcdefgh")',
         _e("pkg/settings.py", '"..."', '"…"'), INVALIDATE, ("TAIL`",),
         needs=_NEEDS_LAZY, imports=("pkg.core",)),
    Case("lazy-unrelated-function", "lazy imports", "lazy", 'pkg.core.summarize("abcdefgh")',
         _e("pkg/lazy.py", "    return x\n", "    return x + x\n"), KEEP, imports=("pkg.core",)),
    Case("lazy-import-line", "lazy imports", "lazy", 'pkg.core.summarize("abcdefgh")',
         _e("pkg/core.py", "from .lazy import helper", "from .lazy import other as helper"),
         INVALIDATE, ("`pkg.core.summarize`",), imports=("pkg.core",)),
    # a class passed as an argument
    Case("pydantic-new-field", "class argument", "schemas", 'app.extract("t", schemas.Invoice)',
         _e("schemas.py", "    total: float\n", "    total: float\n    currency: str = 'EUR'\n"),
         INVALIDATE, ("argument `schema`",), imports=("app", "schemas")),
    Case("pydantic-field-description", "class argument", "schemas",
         'app.extract("t", schemas.Invoice)',
         _e("schemas.py", '"the invoice number"', '"the invoice id"'), INVALIDATE,
         ("argument `schema`",), imports=("app", "schemas")),
    Case("pydantic-field-type", "class argument", "schemas", 'app.extract("t", schemas.Invoice)',
         _e("schemas.py", "total: float", "total: int"), INVALIDATE, ("argument `schema`",),
         imports=("app", "schemas")),
    Case("dataclass-new-field", "class argument", "schemas", 'app.extract("t", schemas.Row)',
         _e("schemas.py", "    size: int = 0\n", "    size: int = 0\n    unit: str = ''\n"),
         INVALIDATE, ("argument `schema`",), imports=("app", "schemas")),
    Case("schema-comment", "class argument", "schemas", 'app.extract("t", schemas.Invoice)',
         _e("schemas.py", "class Invoice(BaseModel):\n", "class Invoice(BaseModel):  # v1\n"),
         KEEP, imports=("app", "schemas")),
    Case("stdlib-class-argument", "class argument", "schemas", 'app.extract("t", dict)',
         _e("schemas.py", "size: int = 0", "size: int = 1"), KEEP, imports=("app", "schemas")),
    # declared files
    Case("declared-file-content", "declared files", "files",
         'app.translate_file("examples/door.dy")',
         _e("examples/door.dy", "state open", "state ajar"), INVALIDATE, ("`examples/door.dy`",)),
    Case("declared-file-trailing-newline", "declared files", "files",
         'app.translate_file("examples/door.dy")',
         _e("examples/door.dy", "state open\n", "state open\n\n"), INVALIDATE,
         ("`examples/door.dy`",)),
    Case("declared-glob-new-file", "declared files", "files", "app.index()",
         _e("examples/lamp.dy", None, 'machine "Lamp"\n'), INVALIDATE, ("`examples/lamp.dy`",)),
    Case("declared-glob-other-file", "declared files", "files", "app.index()",
         _e("examples/notes.txt", "unrelated", "still unrelated"), KEEP),
    Case("declared-file-rewritten-unchanged", "declared files", "files",
         'app.translate_file("examples/door.dy")',
         _e("examples/door.dy", "state open", "state open"), KEEP),
    # files read without files=
    Case("open-read", "observed files", "files", "app.translate_door()",
         _e("examples/door.dy", "state open", "state ajar"), INVALIDATE, ("`examples/door.dy`",),
         needs=_NEEDS_OBSERVED_FILES),
    Case("path-read-text", "observed files", "files", "app.read_door()",
         _e("examples/door.dy", "state open", "state ajar"), INVALIDATE, ("`examples/door.dy`",),
         needs=_NEEDS_OBSERVED_FILES),
    Case("unread-file", "observed files", "files", "app.translate_door()",
         _e("examples/notes.txt", "unrelated", "still unrelated"), KEEP),
    Case("read-file-rewritten-unchanged", "observed files", "files", "app.translate_door()",
         _e("examples/door.dy", "state open", "state open"), KEEP, needs=_NEEDS_OBSERVED_FILES),
    Case("file-outside-the-root", "observed files", "files", "app.read_outside()",
         _e("../outside-data.txt", "outside", "changed outside"), INVALIDATE,
         blind_spot="files outside the project root are never observed (declare them)"),
    # code that only runs: observed dependencies
    Case("subclass-override", "observed dependencies", "dynamic",
         'app.by_subclass("Ab", "loud")', _e("plugins.py", "x.upper()", "x.upper() + '!'"),
         INVALIDATE, ("`plugins.Loud.apply`",), needs=_NEEDS_OBSERVED_DEPS),
    Case("getattr-class", "observed dependencies", "dynamic", 'app.by_name("Ab", "quiet")',
         _e("plugins.py", "x.lower()", "x.casefold()"), INVALIDATE, ("`plugins.Quiet.apply`",),
         needs=_NEEDS_OBSERVED_DEPS),
    Case("getattr-function", "observed dependencies", "dynamic", 'app.by_handler(" Ab ", "trim")',
         _e("plugins.py", "x.strip()", "x.rstrip()"), INVALIDATE, ("`plugins.handle_trim`",),
         needs=_NEEDS_OBSERVED_DEPS),
    Case("ran-code-comment", "observed dependencies", "dynamic", 'app.by_name("Ab", "quiet")',
         _e("plugins.py", "return x.lower()", "return x.lower()  # quietly"), KEEP,
         needs=_NEEDS_OBSERVED_DEPS),
    Case("unused-subclass", "observed dependencies", "dynamic", 'app.by_name("Ab", "quiet")',
         _e("plugins.py", "x.upper()", "x.upper() + '!'"), KEEP),
    # environment variables: a documented blind spot
    Case("environ-in-body", "environment", "env", 'app.greet("ann")', (), INVALIDATE,
         env_before={"PUNCT": "!"}, env_after={"PUNCT": "?"},
         blind_spot="environment variables read by the code are not part of the key"),
    Case("getenv-in-helper", "environment", "env", 'app.greet_helper("ann")', (), INVALIDATE,
         env_before={"GREETING": "hi"}, env_after={"GREETING": "hello"},
         blind_spot="environment variables read by the code are not part of the key"),
)


# -- running a case -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    result: Expected
    text: str
    """The miss explanation (memo_replay), or what the call returned."""


_STEP = """
import json, sys
{imports}
from memo_replay import ReplayMiss
try:
    value = {call}
except ReplayMiss as miss:
    print(json.dumps({{"result": "invalidate", "text": str(miss)}}))
else:
    print(json.dumps({{"result": "keep", "text": repr(value)}}))
"""

_JOBLIB_STEP = """
import json, sys
{imports}
import memo_tool
ran = []
def _profile(frame, event, arg):
    if event == "call" and frame.f_code in memo_tool.CODES:
        ran.append(frame.f_code.co_name)
sys.setprofile(_profile)
value = {call}
sys.setprofile(None)
print(json.dumps({{"result": "invalidate" if ran else "keep", "text": repr(value)}}))
"""

_JOBLIB_SHIM = '''
"""`recorded` for the corpus, backed by joblib.Memory (options such as files= are ignored)."""
import functools
import os

import joblib

MEMORY = joblib.Memory(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".joblib"),
                       verbose=0)
CODES = set()


def recorded(fn=None, **options):
    if fn is None:
        return lambda f: recorded(f, **options)
    cached = MEMORY.cache(fn)
    CODES.add(fn.__code__)

    @functools.wraps(fn)
    def call(*args, **kwargs):  # a function, so that it binds `self` as a method
        return cached(*args, **kwargs)

    return call
'''


def write_template(case: Case, root: Path, tool: Tool = "memo_replay") -> None:
    """Write the case's project under ``root`` (which holds, or gets, a ``pyproject.toml``)."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "pyproject.toml").exists():
        (root / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n')
    for relative, text in TEMPLATES[case.template].items():
        body = textwrap.dedent(text).lstrip("\n")
        if tool == "joblib":
            body = body.replace("from memo_replay import recorded",
                                "from memo_tool import recorded")
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    if tool == "joblib":
        (root / "memo_tool.py").write_text(_JOBLIB_SHIM, encoding="utf-8")


def apply_edits(case: Case, root: Path) -> None:
    for edit in case.edits:
        path = root / edit.path
        if edit.old is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit.new, encoding="utf-8")
            continue
        text = path.read_text(encoding="utf-8")
        if edit.old not in text:
            raise AssertionError(f"{case.name}: {edit.old!r} is not in {edit.path}")
        path.write_text(text.replace(edit.old, edit.new, edit.count), encoding="utf-8")


def _imports(case: Case) -> str:
    modules = case.imports or (case.call.split(".")[0],)
    return "\n".join(f"import {module}" for module in modules)


def _env(root: Path, mode: str, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMO_") and k not in ("CI", "PYTHONPATH")}
    env.update(PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1", MEMO_MODE=mode)
    env.update(extra)
    return env


def _step(case: Case, root: Path, tool: Tool, mode: str, extra: Mapping[str, str]) -> Outcome:
    template = _STEP if tool == "memo_replay" else _JOBLIB_STEP
    code = template.format(imports=_imports(case), call=case.call)
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=_env(root, mode, extra),
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not result.stdout.strip():
        raise AssertionError(f"{case.name} ({tool}, {mode}): exit {result.returncode}\n"
                             f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    document = json.loads(result.stdout.strip().splitlines()[-1])
    return Outcome(document["result"], document["text"])


def run_case(case: Case, root: Path, tool: Tool = "memo_replay") -> Outcome:
    """Write the project, record, edit, replay: what the replay did."""
    write_template(case, root, tool)
    _step(case, root, tool, "record", case.env_before)
    apply_edits(case, root)
    return _step(case, root, tool, "replay", case.env_after or case.env_before)


def handled(case: Case, outcome: Outcome, tool: Tool = "memo_replay") -> bool:
    """Whether a tool's outcome is the right one (for memo_replay, with a miss naming what
    changed)."""
    if outcome.result != case.expected:
        return False
    if tool != "memo_replay" or case.expected == KEEP or not case.names:
        return True
    return any(name in outcome.text for name in case.names)


CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(case.category for case in CASES))
