"""Where the grammars are: ``grammar/NAME.lark``.

The grammars live in the top-level ``grammar/`` folder of the source tree, beside
``src/``, and a wheel ships that folder inside the package, as ``revrules/grammar/``
(``force-include`` in pyproject.toml). :func:`grammar_text` reads ``NAME.lark`` from the
installed package first and then from the source tree the package was imported from
(a source checkout, or an editable install, whose package folder has no copy). Any
``*.lark`` file put in ``grammar/`` is found this way and shipped with the wheel.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["grammar_names", "grammar_path", "grammar_text"]

#: the folder inside the installed package
PACKAGE_FOLDER = "grammar"
#: the folder in the source tree: ``src/revrules/`` → the project's root
SOURCE_FOLDER = Path(__file__).resolve().parent.parent.parent / "grammar"

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def _folders() -> list[Traversable]:
    return [resources.files("revrules").joinpath(PACKAGE_FOLDER), SOURCE_FOLDER]


def grammar_path(name: str) -> Traversable:
    """The file of grammar ``name`` (``NAME.lark``): in the package, else in the source
    tree. :class:`FileNotFoundError` says where it looked when it is in neither."""
    if not _NAME.match(name):
        raise ValueError(f"not a grammar name: {name!r}")
    looked = []
    for folder in _folders():
        path = folder.joinpath(f"{name}.lark")
        if path.is_file():
            return path
        looked.append(str(path))
    raise FileNotFoundError(f"grammar {name!r} not found; looked at " + ", ".join(looked))


def grammar_text(name: str) -> str:
    """The text of grammar ``name``, for :class:`lark.Lark`."""
    return grammar_path(name).read_text("utf-8")


def grammar_names() -> tuple[str, ...]:
    """Every grammar there is (the ``*.lark`` files of either folder), sorted."""
    names: set[str] = set()
    for folder in _folders():
        if folder.is_dir():
            names.update(entry.name.removesuffix(".lark") for entry in folder.iterdir()
                         if entry.name.endswith(".lark") and entry.is_file())
    return tuple(sorted(n for n in names if _NAME.match(n)))
