"""The light NamedTuple behaves as typing's does, and the modules an edit's build imports stay
free of typing, pathlib and re (which together were most of what importing the engine cost),
and of signal (whose enums are built at import)."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import xxhash

import buildflow
from buildflow.typing_lite import NamedTuple


def record_class(base: Any) -> Any:
    """The same class statement, on the light NamedTuple or on typing's."""

    class Record(base):  # type: ignore[misc, valid-type]
        """A record."""

        name: str
        sizes: tuple[int, ...] = ()
        flag: bool = False

        @property
        def total(self) -> int:
            return sum(self.sizes)

    return Record


@pytest.mark.parametrize("base", [NamedTuple, typing.NamedTuple], ids=["light", "typing"])
def test_a_light_named_tuple_behaves_as_typings(base: Any) -> None:
    record = record_class(base)
    made = record("a", (1, 2))
    assert made == ("a", (1, 2), False) and isinstance(made, tuple)
    assert made.total == 3 and made.flag is False
    assert made._replace(flag=True) == ("a", (1, 2), True)
    assert made._asdict() == {"name": "a", "sizes": (1, 2), "flag": False}
    assert record._make(["b", (), True]).name == "b"
    assert record._fields == ("name", "sizes", "flag")
    assert record._field_defaults == {"sizes": (), "flag": False}
    assert record.__doc__ == "A record."
    assert record.__qualname__ == "record_class.<locals>.Record"
    assert record.__module__ == __name__
    assert repr(made) == "Record(name='a', sizes=(1, 2), flag=False)"


def test_a_light_record_without_annotations_in_its_class_body_is_refused() -> None:
    # What a class body gives from Python 3.14 on when its module lacks the __future__ import.
    with pytest.raises(TypeError, match="from __future__ import annotations"):
        type(NamedTuple)("Record", (NamedTuple,), {"__module__": __name__, "size": 0})


EDIT_PATH = ("buildflow.cli", "buildflow.fastpath.proof", "buildflow.fastpath.incremental",
             "buildflow.reporters.plain")


def test_the_modules_of_an_edits_build_import_neither_typing_nor_pathlib_nor_re() -> None:
    # Without site (-S): an editable install's path finder imports pathlib at start-up.
    paths = [str(Path(buildflow.__file__).parents[1]), str(Path(xxhash.__file__).parents[1])]
    probe = (f"import sys; sys.path[:0] = {paths!r}; "
             f"import {', '.join(EDIT_PATH)}; "
             "print(' '.join(m for m in ('buildflow.scheduler', 'typing', 'pathlib', 're', "
             "'signal') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True,
                            text=True, check=True).stdout.split()
    assert loaded == ["buildflow.scheduler"]  # the engine, and none of the others
