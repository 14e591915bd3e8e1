"""Fuzzing the loader: random and mutated Flowfiles never crash it.

Whatever the document holds (random TOML values in every key, wrong types, huge numbers, empty
strings, unicode, deep nesting, broken bytes), `bflow validate` exits 0 or 2 and, for 2, says
which file and key is wrong; never a traceback, never the internal-error exit 3.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildflow.cli import main
from buildflow.flowfile import SETTINGS_KEYS, TASK_KEYS
from conftest import run_bflow

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

VALID = b"""\
[settings]
jobs = 2
env = { LC_ALL = "C" }

[vars]
CC = "gcc"

[tasks.gen]
cmd = "cat {input} > {output}"
inputs = ["src/*.txt"]
outputs = ["build/gen.txt"]

[tasks.each]
foreach = "src/**/*.txt"
cmd = ["echo {item}", "true"]
outputs = ["build/{relstem}.out"]
depfile = "build/{relstem}.d"
deps = ["gen"]
retries = 1
timeout = 5.5

[tasks.all]
deps = ["each"]
"""


def toml(value: Any) -> str:
    """Inline TOML for a Python value (strings through JSON escapes, which TOML shares)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "..", "../..", "/", "/etc/passwd", "{output}", "{nope}", "{{",
                     "**", "[z-a]", "[!]", "!", "!*", "a:b", "src/*.txt", "build/", "gen",
                     "-rf", "\u00e9t\u00e9/\u2603", "x" * 300, "\u0000", "A=B"]),
)
scalars = st.one_of(
    texts, st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=12)


# Most keys take a string or a list of strings: the shapes that reach globs and placeholders.
fields = st.one_of(texts, st.lists(texts, max_size=3), values)


def keyed(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Tables whose keys are mostly the real ones, with random values."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), texts), fields, max_size=6)


documents = st.fixed_dictionaries({}, optional={
    "settings": st.one_of(keyed(SETTINGS_KEYS), values),
    "vars": st.one_of(st.dictionaries(texts, texts, max_size=3), values),
    "tasks": st.one_of(st.dictionaries(st.one_of(st.sampled_from(["gen", "each", "all"]), texts),
                                       st.one_of(keyed(TASK_KEYS), values), max_size=4),
                       values),
    "extra": values,
})


def validate(data: bytes) -> tuple[int, str]:
    """Run `bflow validate` in this process on a Flowfile holding `data`."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "src" / "sub").mkdir(parents=True)
        (root / "src" / "a.txt").write_text("a\n")
        (root / "src" / "sub" / "b.txt").write_text("b\n")
        (root / "Flowfile").write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["-f", str(root / "Flowfile"), "validate"])
    return code, err.getvalue()


def assert_explained(code: int, err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("bflow: error: ")]
        assert lines, err
        # Each problem names the file (and, past TOML syntax, the key).
        assert all("Flowfile" in line for line in lines), err


@FUZZ
@given(documents)
def test_random_documents_are_explained(document: dict[str, Any]) -> None:
    text = "".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in document.items())
    assert_explained(*validate(text.encode()))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["flip", "delete", "insert", "cut"]),
                          st.integers(min_value=0, max_value=len(VALID) - 1),
                          st.binary(min_size=1, max_size=4)), min_size=1, max_size=6))
def test_mutated_flowfiles_are_explained(mutations: list[tuple[str, int, bytes]]) -> None:
    data = bytearray(VALID)
    for kind, at, blob in mutations:
        if not data:
            break
        at %= len(data)
        if kind == "flip":
            data[at] ^= blob[0] or 1
        elif kind == "delete":
            del data[at:at + len(blob)]
        elif kind == "insert":
            data[at:at] = blob
        else:
            del data[at:]
    assert_explained(*validate(bytes(data)))


def test_valid_base_document_loads() -> None:
    """The mutation seed itself is valid, so mutations explore near-valid documents."""
    assert validate(VALID)[0] == 0


NASTY = {
    "deep nesting": "x = " + "[" * 3000 + "]" * 3000 + "\n",
    "huge number": '[tasks.a]\ncmd = "true"\nretries = 99999999999999999999999\n',
    "infinite timeout": '[tasks.a]\ncmd = "true"\ntimeout = inf\n',
    "NUL in a command": '[tasks.a]\ncmd = "echo \\u0000"\n',
    "bad env name": '[tasks.a]\ncmd = "true"\nenv = { "A=B" = "1" }\n',
    "reversed glob range": '[tasks.a]\ncmd = "true"\ninputs = ["[z-a]*"]\n',
    "not UTF-8": b'[tasks.a]\ncmd = "\xff\xfe"\n'.decode("latin-1"),
    "syntax error": '[tasks.a]\ncmd = "true\n',
}


def test_nasty_documents_through_the_real_command(tmp_path: Path) -> None:
    """The same promise from the real `bflow validate` process, for the known hard cases."""
    for label, text in NASTY.items():
        (tmp_path / "Flowfile").write_bytes(text.encode("latin-1" if label == "not UTF-8"
                                                        else "utf-8"))
        result = run_bflow("validate", cwd=tmp_path)
        assert "Traceback" not in result.stderr, label
        assert result.returncode in (0, 2), (label, result.stderr)
        assert "Flowfile" in result.stderr or result.returncode == 0, (label, result.stderr)
