"""Recognising values of optional libraries — pydantic, numpy, uuid, decimal — without importing
them.

A value of such a type implies its library is already imported, so each check looks the library
up in :data:`sys.modules` and answers False when it is absent: ``import memo_replay`` and
computing a key stay free of pydantic and numpy (and of uuid and decimal, which are not free at
startup either).
"""

from __future__ import annotations

import sys
from typing import Any


def instance_of(value: object, module: str, name: str) -> bool:
    """``isinstance(value, module.name)`` without importing ``module``: a value of that type
    means it is already imported (uuid and decimal are not free at startup)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def is_pydantic_model(value: object) -> bool:
    """``value`` is an instance of a pydantic (v2) ``BaseModel``."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def is_pydantic_model_class(tp: type) -> bool:
    """``tp`` is a pydantic (v2) ``BaseModel`` subclass (``tp`` must be a class)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(tp, pydantic.BaseModel)


def is_numpy_array(value: object) -> bool:
    """``value`` is a ``numpy.ndarray``, subclasses (masked arrays, matrices…) included."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def is_plain_ndarray(value: object) -> bool:
    """``value`` is exactly a ``numpy.ndarray``, no subclass.

    What the numpy serializer needs: the ``.npy`` format stores dtype, shape and bytes only, so
    a subclass (a masked array's mask, a ``numpy.matrix``) would replay as a plain ndarray and
    lose what made it one. A key, by contrast, may encode any array by its data
    (:func:`is_numpy_array`).
    """
    numpy = sys.modules.get("numpy")
    return numpy is not None and type(value) is numpy.ndarray


def is_numpy_scalar(value: object) -> bool:
    """``value`` is a numpy scalar (``numpy.generic``: ``numpy.float32(1.5)``, ``numpy.int64``…)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.generic)


def is_temporal(value: object, *names: str) -> bool:
    """``isinstance(value, (datetime.<name>, ...))`` without importing ``datetime`` (~1.4 ms of a
    process's start on Python 3.11, whose ``datetime`` module runs its pure-Python twin first)."""
    datetime = sys.modules.get("datetime")
    return datetime is not None and isinstance(value, tuple(getattr(datetime, n) for n in names))


def is_dataclass_class(tp: type) -> bool:
    """``tp`` is a dataclass (``tp`` must be a class); ``dataclasses`` is imported if so."""
    dataclasses = sys.modules.get("dataclasses")
    return dataclasses is not None and dataclasses.is_dataclass(tp)


def dataclass_fields(value: object) -> dict[str, Any] | None:
    """Field name → value of a dataclass instance (None for anything else, classes included),
    as ``dataclasses.fields`` gives them; a dataclass instance means ``dataclasses`` is
    imported, and ``import memo_replay`` does not import it (it imports ``inspect``)."""
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is None or isinstance(value, type) or not dataclasses.is_dataclass(value):
        return None
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
