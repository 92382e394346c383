"""Arguments in the key: binding, ``ignore=``, unhashable arguments, the bounded preview."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from memo_replay import InvalidOption, Store, UnhashableArgument, recorded, track
from memo_replay.keys.arguments import ArgumentSpec, preview_value


class Session:
    """Stands in for a network client: no stable encoding."""

    def __init__(self, token: str) -> None:
        self.token = token


# -- binding -------------------------------------------------------------------------------------


def test_positional_keyword_and_default_bind_to_one_key() -> None:
    @recorded
    def f(x: int, y: int = 2) -> int:
        return x + y

    keys = {f.memo.key(1), f.memo.key(x=1), f.memo.key(1, y=2), f.memo.key(y=2, x=1),
            f.memo.key(1, 2)}
    assert len(keys) == 1


def test_different_values_give_different_keys() -> None:
    @recorded
    def f(x: object, y: int = 2) -> object:
        return x

    assert f.memo.key(1) != f.memo.key(2)
    assert f.memo.key(1) != f.memo.key(1, y=3)
    assert f.memo.key(1) != f.memo.key(1.0)
    assert f.memo.key(1) != f.memo.key("1")
    assert f.memo.key([1]) != f.memo.key((1,))


def test_same_values_in_different_parameters_differ() -> None:
    @recorded
    def f(a: int = 0, b: int = 0) -> int:
        return a - b

    assert f.memo.key(a=1) != f.memo.key(b=1)


def test_var_positional_and_keyword_only() -> None:
    @recorded
    def f(*items: int, scale: int = 1, **extra: int) -> int:
        return sum(items) * scale

    assert f.memo.key(1, 2) == f.memo.key(1, 2, scale=1)
    assert f.memo.key(1, 2) != f.memo.key(2, 1)
    assert f.memo.key(1, a=1, b=2) == f.memo.key(1, b=2, a=1)
    assert f.memo.key(1, a=1) != f.memo.key(1, a=2)


def test_a_call_that_does_not_fit_the_signature_is_a_type_error() -> None:
    @recorded
    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError):
        f.memo.key(1, 2)  # type: ignore[call-arg]


def test_the_key_ignores_identity_and_follows_value(memo_env: Store) -> None:
    @recorded
    def f(data: dict[str, list[int]]) -> int:
        return sum(sum(v) for v in data.values())

    with track() as events:
        assert f({"a": [1, 2], "b": [3]}) == 6
        assert f({"b": [3], "a": [1, 2]}) == 6
    assert [e.outcome for e in events] == ["recorded", "replayed"]


# -- ignore= -------------------------------------------------------------------------------------


def test_ignored_argument_is_out_of_the_key() -> None:
    @recorded(ignore=["client"])
    def f(prompt: str, client: Session) -> str:
        return prompt

    assert f.memo.key("hi", Session("a")) == f.memo.key("hi", client=Session("b"))
    assert f.memo.key("hi", Session("a")) != f.memo.key("ho", Session("a"))


def test_ignored_argument_is_out_of_the_stored_entry(memo_env: Store) -> None:
    secret = "sk-live-0123456789abcdefSECRET"

    @recorded(ignore=["api_key", "client"])
    def f(prompt: str, api_key: str, client: Session) -> str:
        return prompt.upper()

    with track() as events:
        assert f("hello", secret, Session(secret)) == "HELLO"
        assert f("hello", "another-key", Session("x")) == "HELLO"
    assert [e.outcome for e in events] == ["recorded", "replayed"]

    (entry,) = memo_env.entries()
    raw = entry.path.read_bytes()
    assert secret.encode() not in raw
    assert b"SECRET" not in raw
    assert set(entry.arguments) == {"prompt"}
    assert set(json.loads(raw)["components"]["arguments"]) == {"prompt"}


def test_ignore_reaches_into_var_keyword(memo_env: Store) -> None:
    @recorded(ignore=["token"])
    def f(x: int, **options: Any) -> int:
        return x

    assert f.memo.key(1, token="a") == f.memo.key(1, token="b") == f.memo.key(1)
    assert f.memo.key(1, token="a", depth=2) != f.memo.key(1, token="a", depth=3)

    f(1, token="tok-ABCDEF-123", depth=2)
    (entry,) = memo_env.entries()
    raw = entry.path.read_bytes()
    assert b"tok-ABCDEF-123" not in raw
    assert entry.arguments["options"] == {"depth": 2}


def test_ignore_of_an_unknown_parameter_is_an_error() -> None:
    def f(prompt: str, model: str = "small") -> str:
        return prompt

    with pytest.raises(InvalidOption) as info:
        recorded(ignore=["nope"])(f)
    message = str(info.value)
    assert "nope" in message
    assert "no parameter named" in message
    assert "prompt, model" in message  # lists the parameters there are
    assert "test_ignore_of_an_unknown_parameter_is_an_error.<locals>.f" in message


def test_ignore_as_a_single_string() -> None:
    @recorded(ignore="client")
    def f(prompt: str, client: Session) -> str:
        return prompt

    assert f.memo.key("a", Session("1")) == f.memo.key("a", Session("2"))


# -- arguments that cannot be encoded ------------------------------------------------------------


def test_unhashable_argument_names_function_parameter_type_and_fix() -> None:
    @recorded
    def translate(prompt: str, client: Session) -> str:
        return prompt

    with pytest.raises(UnhashableArgument) as info:
        translate.memo.key("hi", Session("t"))
    error = info.value
    assert isinstance(error, TypeError)
    assert error.function.endswith("test_unhashable_argument_names_function_parameter_type_and_"
                                   "fix.<locals>.translate")
    assert error.parameter == "client"
    assert error.type_name.endswith(".Session")
    message = str(error)
    assert f"cannot build a key for `{error.function}`" in message
    assert "argument `client`" in message
    assert f"`{error.type_name}`" in message
    assert "@recorded(ignore=['client'])" in message
    assert "__memo_key__" in message


def test_unhashable_argument_is_raised_before_the_function_runs(memo_env: Store) -> None:
    ran: list[int] = []

    @recorded
    def f(client: Session) -> int:
        ran.append(1)
        return 1

    with pytest.raises(UnhashableArgument):
        f(Session("t"))
    assert ran == []
    assert list(memo_env.entries()) == []


def test_nested_unhashable_value_names_its_path() -> None:
    @recorded
    def f(config: dict[str, Any]) -> int:
        return 0

    with pytest.raises(UnhashableArgument) as info:
        f.memo.key({"retries": 3, "hooks": [print, Session("x")]})
    assert info.value.parameter == "config"
    assert "argument `config`['hooks'][0]" in str(info.value)
    assert info.value.type_name == "builtins.builtin_function_or_method"


def test_memo_key_makes_an_object_hashable() -> None:
    @dataclasses.dataclass
    class Keyed:
        name: str
        session: Session

        def __memo_key__(self) -> str:
            return self.name

    @recorded
    def f(thing: Keyed) -> str:
        return thing.name

    assert f.memo.key(Keyed("a", Session("1"))) == f.memo.key(Keyed("a", Session("2")))
    assert f.memo.key(Keyed("a", Session("1"))) != f.memo.key(Keyed("b", Session("1")))


def test_self_referential_argument_is_unhashable_not_a_crash() -> None:
    @recorded
    def f(data: list[Any]) -> int:
        return 0

    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UnhashableArgument) as info:
        f.memo.key(loop)
    assert "argument `data`" in str(info.value)


# -- the preview stored in entries ---------------------------------------------------------------


def test_preview_of_a_large_string_is_bounded(memo_env: Store) -> None:
    @recorded
    def size(text: str) -> int:
        return len(text)

    text = "abcdefghij" * 100_000  # 1 MB
    assert size(text) == 1_000_000
    (entry,) = memo_env.entries()
    assert entry.path.stat().st_size < 10_000
    shown = entry.arguments["text"]
    assert isinstance(shown, str)
    assert len(shown) < 300
    assert "1000000 chars" in shown


def test_bytes_are_never_copied_into_the_entry(memo_env: Store) -> None:
    @recorded
    def size(blob: bytes, small: bytes) -> int:
        return len(blob) + len(small)

    blob = b"\x89PNG" + bytes(range(256)) * 4096
    assert size(blob, b"tiny-bytes-marker") == len(blob) + 17
    (entry,) = memo_env.entries()
    raw = entry.path.read_bytes()
    assert len(raw) < 10_000
    assert b"tiny-bytes-marker" not in raw
    assert entry.arguments == {"blob": f"<bytes of {len(blob)} bytes>",
                               "small": "<bytes of 17 bytes>"}


def test_preview_bounds_mapping_keys_too(memo_env: Store) -> None:
    @recorded
    def count(table: dict[Any, int]) -> int:
        return len(table)

    long_key = "k" * 1_000_000
    assert count({long_key: 1, b"\x00raw-key-bytes" * 1000: 2}) == 2
    (entry,) = memo_env.entries()
    raw = entry.path.read_bytes()
    assert len(raw) < 10_000
    assert b"raw-key-bytes" not in raw
    assert set(entry.arguments["table"]) == {"<bytes of 14000 bytes>",
                                             "k" * 200 + "… (1000000 chars)"}


def test_preview_of_large_containers_is_summarized() -> None:
    shown = preview_value(list(range(1000)))
    assert isinstance(shown, list)
    assert len(shown) == 21
    assert shown[-1] == "… (980 more)"
    mapping = preview_value({f"k{i:04d}": i for i in range(1000)})
    assert isinstance(mapping, dict)
    assert len(mapping) == 21
    nested = preview_value([[[[[["deep"]]]]]])
    assert "deep" not in json.dumps(nested)


def test_preview_is_json_and_shows_paths_relative_to_root(tmp_path: Path) -> None:
    spec = ArgumentSpec(lambda path, when=None: None, function_id="m.f", ignore=frozenset(),
                        root=tmp_path)
    preview = spec.preview(spec.bind((tmp_path / "data" / "x.txt",), {}))
    assert preview == {"path": "data/x.txt", "when": None}
    json.dumps(preview)  # JSON-able


def test_unknown_objects_preview_as_their_type_only() -> None:
    shown = preview_value(Session("sk-secret-value"))
    assert isinstance(shown, str)
    assert shown.endswith(".Session>")
    assert "sk-secret" not in shown
