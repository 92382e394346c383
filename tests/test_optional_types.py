"""Recognising values of optional libraries without importing them (memo_replay.optional_types).

numpy and pydantic are installed with the test extras, so both are imported here; that
``import memo_replay`` never imports them is checked in ``test_lazy_imports.py``.
"""

from __future__ import annotations

import dataclasses
import decimal
import uuid
from typing import Any

import numpy
import pydantic

from memo_replay.optional_types import (
    instance_of,
    is_numpy_array,
    is_numpy_scalar,
    is_plain_ndarray,
    is_pydantic_model,
    is_pydantic_model_class,
)


class Model(pydantic.BaseModel):
    a: int


@dataclasses.dataclass
class Point:
    x: int


class LooksLikeAModel:
    """Has what duck typing would look for, but is no pydantic model."""

    model_fields: dict[str, Any] = {"a": None}  # noqa: RUF012
    a = 1

    def model_dump(self) -> dict[str, Any]:
        return {"a": self.a}


def test_pydantic_models_and_their_classes() -> None:
    assert is_pydantic_model(Model(a=1))
    assert not is_pydantic_model(Model)  # the class is not an instance
    assert not is_pydantic_model(Point(1))
    assert not is_pydantic_model(LooksLikeAModel())
    assert is_pydantic_model_class(Model)
    assert not is_pydantic_model_class(Point)
    assert not is_pydantic_model_class(LooksLikeAModel)


def test_numpy_arrays_scalars_and_exact_ndarrays() -> None:
    plain = numpy.arange(3)
    masked = numpy.ma.masked_array([1, 2], mask=[False, True])
    assert is_numpy_array(plain)
    assert is_plain_ndarray(plain)
    assert is_numpy_array(masked)
    assert not is_plain_ndarray(masked)
    assert not is_numpy_array([1, 2])
    assert not is_plain_ndarray([1, 2])
    assert is_numpy_scalar(numpy.float32(1.5))
    assert is_numpy_scalar(numpy.int64(3))
    assert not is_numpy_scalar(1.5)
    assert not is_numpy_scalar(plain)


def test_instance_of_names_the_type_by_module_and_name() -> None:
    assert instance_of(uuid.UUID(int=5), "uuid", "UUID")
    assert instance_of(decimal.Decimal("1.5"), "decimal", "Decimal")
    assert not instance_of("1.5", "decimal", "Decimal")
    assert not instance_of(1, "memo_replay_no_such_module", "Anything")  # never imported
