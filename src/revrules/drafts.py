"""Frozen values built as mutable drafts: the engine's fast constructors.

The engine's values (events, subscriptions, charges, decisions, revenue events, the
state) are frozen attrs classes. A frozen class's ``__init__`` stores each field
through ``object.__setattr__``, which costs several times what a plain slot store
costs; on the hot path that was most of the price of an object. :func:`drafts` gives
a class two functions that build the same value faster:

* ``make(...)``, with the signature of ``__init__``: a *draft* (an instance of a plain,
  mutable class with exactly the same slots) is filled with plain stores, then frozen
  by giving it the frozen class (``__class__`` assignment, which Python allows between
  classes of identical layout);
* ``evolve(inst, changes)``: a draft copy of ``inst`` with ``changes`` applied, frozen
  the same way (what ``attrs.evolve`` does, for these classes).

The result is an ordinary instance of the frozen class: equal to, hashed, printed,
pickled and written like one built by ``__init__``; a draft never escapes these
functions. It works for slotted classes without a ``__weakref__`` slot (that slot
would make the layouts differ), and without validators, converters or
``__attrs_post_init__``; :func:`drafts` refuses other classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["drafts", "maker"]

_T = TypeVar("_T")

#: class → its fast ``make`` (registered by :func:`drafts`)
_MAKERS: dict[type, Callable[..., Any]] = {}


def drafts(cls: type) -> tuple[Callable[..., Any], Callable[[Any, dict[str, Any]], Any]]:
    """``(make, evolve)`` for the frozen attrs class ``cls`` (see the module)."""
    fields = attrs.fields(cls)
    names = [f.name for f in fields]
    # only identifiers reach the generated code (they are our own field names)
    assert all(name.isidentifier() and name.isascii() for name in names), names
    if "__weakref__" in getattr(cls, "__slots__", ("__weakref__",)) or \
            hasattr(cls, "__attrs_post_init__") or \
            any(f.validator is not None or f.converter is not None for f in fields):
        raise TypeError(f"{cls.__name__}: no fast drafts for this class")
    slots: tuple[str, ...] = tuple(getattr(cls, "__slots__"))  # noqa: B009 - checked above
    draft = type(f"{cls.__name__}Draft", cls.__bases__, {"__slots__": slots})
    namespace: dict[str, Any] = {"new": object.__new__, "Draft": draft, "Frozen": cls,
                                 "NOTHING": attrs.NOTHING}
    params, fills = [], []
    for i, f in enumerate(fields):
        if f.default is attrs.NOTHING:
            params.append(f.name)
            fills.append(f"    o.{f.name} = {f.name}")
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            assert not f.default.takes_self
            namespace[f"factory_{i}"] = f.default.factory
            params.append(f"{f.name}=NOTHING")
            fills.append(f"    o.{f.name} = factory_{i}() if {f.name} is NOTHING else {f.name}")
        else:
            namespace[f"default_{i}"] = f.default
            params.append(f"{f.name}=default_{i}")
            fills.append(f"    o.{f.name} = {f.name}")
    copies = "\n".join(f"    o.{name} = inst.{name}" for name in names)
    source = (
        f"def make({', '.join(params)}):\n"
        f"    o = new(Draft)\n" + "\n".join(fills) + "\n"
        "    o.__class__ = Frozen\n"
        "    return o\n"
        "def evolve(inst, changes):\n"
        "    o = new(Draft)\n" + copies + "\n"
        "    for name, value in changes.items():\n"
        "        setattr(o, name, value)\n"
        "    o.__class__ = Frozen\n"
        "    return o\n")
    exec(source, namespace)  # noqa: S102 - generated from our own field names
    make, evolve = namespace["make"], namespace["evolve"]
    # a class whose layout is not the draft's fails here, at import, not on the hot path
    probe: Any = object.__new__(draft)
    probe.__class__ = cls
    make.__doc__ = f"A {cls.__name__}, as ``{cls.__name__}(...)`` builds it, built faster."
    _MAKERS[cls] = make
    return make, evolve


def maker(cls: type[_T]) -> Callable[..., _T]:
    """The fast ``make`` of ``cls`` if it has one, else ``cls`` itself: callers write
    ``maker(RevenueEvent)(...)``, so that the class is still looked up by its name where
    it is used (and a test that replaces the name replaces the constructor)."""
    return _MAKERS.get(cls, cls)
