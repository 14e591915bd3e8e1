"""TOML -> checked, frozen declarations: what the user wrote, every key typed and known.

Problems are collected, not raised one at a time, so a user sees every mistake in one run.
Each problem reads `Flowfile: tasks.compile.outputs[2]: expected a string, got 3`.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from buildflow import conditions, tomlparts
from buildflow.errors import FlowfileError, UsageError
from buildflow.executors import url_problem
from buildflow.locate import flowfile_path, shown
from buildflow.model import Settings
from buildflow.placeholders import BUILTIN_NAMES
from buildflow.scripts import hashed
from buildflow.typecheck import Checker, type_name

if TYPE_CHECKING:
    from typing import Any

    from buildflow.fs import FileSystem

TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/+@]*\Z")


class TaskDecl(NamedTuple):
    """One `[tasks.NAME]` table as written (placeholders not yet expanded)."""

    name: str
    cmd: tuple[str, ...] | None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    foreach: tuple[str, ...] = ()
    depfile: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    retries: int | None = None
    retry_delay: float | None = None
    timeout: float | None = None
    always: bool = False
    description: str = ""
    interactive: bool = False
    cache: bool | None = None
    py: str | None = None  # "module:function", the action instead of cmd
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (condition, its values), see `when`


class Flowfile(NamedTuple):
    path: str  # absolute: the Flowfile, or the build script that declared the project
    root: str  # absolute: the Flowfile's directory, or the root a build script's Project names
    settings: Settings
    vars: tuple[tuple[str, str], ...]
    tasks: tuple[TaskDecl, ...]
    computed: tuple[tuple[str, str], ...] = ()  # (name, command) of `X = { sh = "..." }`
    code: tuple[tuple[str, str], ...] = ()  # the kinds' Python files, as `Project.code`


def find_flowfile(start: str) -> str:
    """The first Flowfile in `start` or a parent directory."""
    found = flowfile_path(None, start)
    if found is None:
        raise UsageError(
            f"no Flowfile found in {start} or any parent directory "
            "(run 'bflow init' to write a starter one, or name one with -f PATH)"
        )
    return found


def read_toml(path: str, fs: FileSystem | None = None) -> dict[str, Any]:
    """The Flowfile at `path` as TOML, read from `fs` (by default the real disk)."""
    name = shown(path)
    try:
        if fs is not None:
            data = fs.read(path)
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the Flowfile: {exc.strerror or exc}") from None
    try:  # tomli's wheels are compiled: a third of the standard library's parse time
        import tomli as tomllib
    except ImportError:  # no tomli (a system Python's packages): the same parser, in Python
        import tomllib  # type: ignore[no-redef]
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is no error
        return tomlparts.loads(text, tomllib.loads)
    except RecursionError:
        raise FlowfileError([f"{name}: values are nested too deeply to read"]) from None
    except UnicodeDecodeError as exc:
        # utf-8-sig counts from after a byte-order mark; the file's own offset, line, column
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise FlowfileError([f"{name}:{line}:{column}: not valid UTF-8 (byte {start} of the "
                             "file); save it as UTF-8"]) from None
    except tomllib.TOMLDecodeError as exc:
        message, line, column = _syntax_position(str(exc), text)
        raise FlowfileError(
            [f"{name}:{line}:{column}: TOML syntax error: {message}"]) from None


def _syntax_position(message: str, text: str) -> tuple[str, int, int]:
    """Split tomllib's "... (at line L, column C)" message; "at end of document" points just
    after the last character written, where the missing part belongs."""
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)\Z", message)
    if where:
        return message[: where.start()], int(where.group(1)), int(where.group(2))
    lines = text.rstrip().split("\n")
    return re.sub(r"\s*\(at end of document\)\Z", "", message) + " at the end of the file", \
        len(lines), len(lines[-1]) + 1


SETTINGS_KEYS = ("jobs", "default", "shell", "retries", "retry_delay", "timeout", "env",
                 "cache_dir", "on_success", "on_failure", "remote_cache", "remote_cache_upload",
                 "executor")
TASK_KEYS = ("cmd", "inputs", "outputs", "deps", "foreach", "depfile", "env", "cwd", "retries",
             "retry_delay", "timeout", "always", "description", "interactive", "cache", "py",
             "when", "kind")
# Keys as other tools name them (go-task, Make, Bazel, doit, CI files), each suggested as
# bflow's: by spelling alone `generates` is nearest to `interactive` and `script` to
# `description`.
TASK_KEYS_ELSEWHERE = {
    **dict.fromkeys(("commands", "cmds", "command", "run", "script", "recipe", "actions",
                     "steps"), "cmd"),
    **dict.fromkeys(("sources", "srcs", "prerequisites", "file_dep", "input"), "inputs"),
    **dict.fromkeys(("generates", "targets", "outs", "output", "products", "artifacts"),
                    "outputs"),
    **dict.fromkeys(("dependencies", "depends_on", "needs", "requires", "task_dep"), "deps"),
    **dict.fromkeys(("dir", "workdir", "working_dir", "working_directory", "directory"), "cwd"),
    **dict.fromkeys(("desc", "summary", "help"), "description"),
    "environment": "env", "retry": "retries",
}
SETTINGS_KEYS_ELSEWHERE = {
    **dict.fromkeys(("parallel", "parallelism", "concurrency", "workers"), "jobs"),
    "environment": "env", "default_target": "default",
}


def _inside_root(path: str) -> bool:
    """A relative path that names a directory below the root (not the root itself)."""
    normal = posixpath.normpath(path)
    return not (normal.startswith("/") or normal in (".", "..") or normal.startswith("../"))


def _parse_settings(raw: Any, check: Checker) -> Settings:
    if not isinstance(raw, dict):
        check.problem("settings", f"expected a table, got {type_name(raw)}")
        return Settings()
    check.keys(raw, "settings", SETTINGS_KEYS, SETTINGS_KEYS_ELSEWHERE)
    values: dict[str, Any] = {}
    if "jobs" in raw:
        jobs = check.number(raw["jobs"], "settings.jobs", integer=True, lowest=1)
        if jobs is not None:
            values["jobs"] = int(jobs)
    if "default" in raw:
        values["default"] = check.strings(raw["default"], "settings.default")
        if raw["default"] == []:  # read as none, it built every task
            check.problem("settings.default", "an empty list: name the tasks a plain `bflow` "
                                              "builds, or leave it out to build every task")
    for key in ("shell", "cache_dir", "on_success", "on_failure"):
        if key in raw:
            text = check.string(raw[key], f"settings.{key}")
            if text == "":
                check.problem(f"settings.{key}", "must not be empty")
            elif key == "cache_dir" and text is not None and not _inside_root(text):
                check.problem("settings.cache_dir", f"'{text}' is not a directory inside the "
                                                    "project root; bflow writes its state, logs "
                                                    "and lock there (e.g. \".bflow\")")
            elif text is not None:
                values[key] = text
    if "retries" in raw:
        retries = check.number(raw["retries"], "settings.retries", integer=True)
        if retries is not None:
            values["retries"] = int(retries)
    for key in ("retry_delay", "timeout"):
        if key in raw:
            number = check.number(raw[key], f"settings.{key}")
            if number is not None:
                values[key] = float(number)
    if "env" in raw:
        values["env"] = check.string_table(raw["env"], "settings.env", env=True)
    for key, problem_of in (("remote_cache", remote_url_problem), ("executor", url_problem)):
        url = check.string(raw[key], f"settings.{key}") if key in raw else None
        if url is not None:
            problem = problem_of(url)
            if problem:
                check.problem(f"settings.{key}", problem)
            else:
                values[key] = url
    if "remote_cache_upload" in raw:
        values["remote_cache_upload"] = check.boolean(raw["remote_cache_upload"],
                                                      "settings.remote_cache_upload")
    return Settings(**values)


def remote_url_problem(url: str) -> str:
    """What is wrong with a remote cache URL written in the Flowfile ("" if nothing): it must
    be http(s), and it must not hold credentials, which a Flowfile would share with everyone
    who reads it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.split("/")[0]:
        return f"'{url}' is not an http:// or https:// URL (e.g. \"https://cache.example.com/bflow\")"
    if "@" in rest:  # also where a password holds a '/' written as it is
        return ("a URL with credentials does not belong in the Flowfile; give the URL with "
                "them in BFLOW_REMOTE_CACHE, or a header in BFLOW_REMOTE_CACHE_HEADER")
    return ""


def _parse_task(name: str, raw: Any, check: Checker, code: set[str]) -> TaskDecl | None:
    where = f"tasks.{name}"
    if not TASK_NAME.match(name):
        check.problem(where, "a task name starts with a letter, digit or _ and uses letters, "
                             "digits and _ . - / + @ only (':' is reserved for foreach "
                             "instances, '=' for VAR=VALUE)")
    if not isinstance(raw, dict):
        check.problem(where, f"expected a table, got {type_name(raw)}")
        return None
    if "kind" in raw:
        from buildflow.kinds import expand

        raw = expand(name, raw, check, code)
        if raw is None:
            return None
    keys_known = check.keys(raw, where, TASK_KEYS, TASK_KEYS_ELSEWHERE)
    get: Callable[[str], Any] = raw.get
    cmd: tuple[str, ...] | None = None
    if "cmd" in raw:
        known = len(check.problems)
        cmd = check.strings(raw["cmd"], f"{where}.cmd")
        if len(check.problems) == known and (not cmd or any(not c.strip() for c in cmd)):
            check.problem(f"{where}.cmd", "a command must not be empty (leave cmd out for a "
                                          "group task)")
    py = _parse_py(raw["py"], f"{where}.py", check) if "py" in raw else None
    if py is not None and cmd is not None:
        check.problem(f"{where}.py", "a task has either py or cmd as its action, not both; "
                                     "remove one")
    if py is not None and raw.get("interactive") is True:
        check.problem(f"{where}.interactive", "a py task runs in a worker process, which has "
                                              "no terminal; an interactive task needs a cmd")
    lists = {key: check.strings(raw[key], f"{where}.{key}")
             for key in ("inputs", "outputs", "deps") if key in raw}
    said = len(check.problems)
    foreach = check.strings(raw["foreach"], f"{where}.foreach") \
        if "foreach" in raw else ()
    if "foreach" in raw and len(check.problems) == said \
            and not any(not f.startswith("!") for f in foreach):
        check.problem(f"{where}.foreach", "needs at least one glob that is not an exclusion")
    # A misspelt key (`cmdd`) is the cause; "no cmd" would only be its consequence.
    if cmd is None and "py" not in raw and lists.get("outputs") and keys_known:
        check.problem(f"{where}.outputs", "a group task (no cmd) cannot have outputs; add a cmd")
    if cmd is None and "py" not in raw and "when" in raw and keys_known:
        check.problem(f"{where}.when", "a group task (no cmd) runs nothing a condition could "
                                       "skip, and its deps run anyway; put `when` on the tasks "
                                       "it needs")
    for index, output in enumerate(lists.get("outputs", ())):
        if not output.strip() or output.startswith("!"):
            check.problem(f"{where}.outputs[{index}]", f"not a usable output path: {output!r}")
    optional_strings = {}
    for key in ("depfile", "cwd", "description"):
        if key in raw:
            optional_strings[key] = check.string(raw[key], f"{where}.{key}")
    if (depfile := optional_strings.get("depfile")) is not None and not depfile.strip():
        check.problem(f"{where}.depfile", "an empty path; leave depfile out for none")
    numbers: dict[str, Any] = {}
    if "retries" in raw:
        retries = check.number(raw["retries"], f"{where}.retries", integer=True)
        numbers["retries"] = None if retries is None else int(retries)
    for key in ("retry_delay", "timeout"):
        if key in raw:
            number = check.number(raw[key], f"{where}.{key}")
            numbers[key] = None if number is None else float(number)
    return TaskDecl(
        name=name,
        cmd=cmd,
        inputs=lists.get("inputs", ()),
        outputs=lists.get("outputs", ()),
        deps=lists.get("deps", ()),
        foreach=foreach,
        depfile=optional_strings.get("depfile") or None,
        env=check.string_table(raw["env"], f"{where}.env", env=True) if "env" in raw else (),
        cwd=optional_strings.get("cwd") or None,
        always=check.boolean(get("always"), f"{where}.always") if "always" in raw else False,
        description=optional_strings.get("description") or "",
        interactive=check.boolean(raw["interactive"], f"{where}.interactive")
        if "interactive" in raw else False,
        cache=check.boolean(get("cache"), f"{where}.cache") if "cache" in raw else None,
        py=py,
        when=conditions.parse(raw["when"], f"{where}.when", check) if "when" in raw else (),
        **numbers,
    )


def _parse_py(value: Any, where: str, check: Checker) -> str | None:
    """A `py` reference, "package.module:function"; whether it imports is checked when the
    project is resolved (`pytasks.code_of`)."""
    text = check.string(value, where)
    if text is None:
        return None
    module, sep, function = text.partition(":")
    if not sep or not all(part.isidentifier() for part in (*module.split("."), function)):
        check.problem(where, f"expected \"module:function\" (e.g. \"tools.gen:render\"), "
                             f"got {text!r}")
        return None
    return text


def parse(path: str, data: Mapping[str, Any], root: str | None = None) -> Flowfile:
    """Check the TOML document's shape and types; raise one FlowfileError listing everything.
    `path` is the Flowfile's absolute path, which messages name; the project's root is its
    directory unless `root` is given (a build script's Project may name another)."""
    check = Checker(shown(path))
    check.keys(data, "", ("settings", "vars", "tasks"))
    settings = _parse_settings(data.get("settings", {}), check)
    vars_, computed = _parse_vars(data.get("vars", {}), check)
    for name, _ in (*vars_, *computed):
        if not name.isidentifier():
            check.problem(f"vars.{name}", "a var name is letters, digits and _ (it is used as "
                                          "{NAME}), not starting with a digit")
        elif name in BUILTIN_NAMES:
            check.problem(f"vars.{name}", f"'{name}' is a built-in placeholder; name the var "
                                          "something else")
    raw_tasks = data.get("tasks", {})
    tasks: list[TaskDecl] = []
    code: set[str] = set()  # the Python files of the kinds used
    if not isinstance(raw_tasks, dict):
        check.problem("tasks", f"expected a table of tasks, got {type_name(raw_tasks)}")
    elif not raw_tasks:
        check.problem("tasks", "no tasks declared; add a [tasks.NAME] table with a cmd")
    else:
        for name, raw in raw_tasks.items():
            decl = _parse_task(name, raw, check, code)
            if decl is not None:
                tasks.append(decl)
    if check.problems:
        raise FlowfileError(check.problems)
    return Flowfile(path=path, root=root or os.path.dirname(path), settings=settings,
                    vars=vars_, tasks=tuple(tasks), computed=computed,
                    code=hashed(list(code)) if code else ())


def parse_objects(path: str, data: Mapping[str, Any], root: str | None = None) -> Flowfile:
    """`parse` for a document made of Python objects (a build script, `from_dict`), whose
    keys, unlike TOML's, may be other than strings."""
    check = Checker(shown(path))
    if not isinstance(data, Mapping):
        check.problem("", f"expected a table ({{'tasks': {{...}}}}), got {type_name(data)}")
    else:
        check.string_keys(data, "")
    if check.problems:
        raise FlowfileError(check.problems)
    return parse(path, data, root)


def _parse_vars(raw: Any, check: Checker) -> tuple[tuple[tuple[str, str], ...],
                                                   tuple[tuple[str, str], ...]]:
    """The `[vars]` table: (plain vars, computed vars as (name, command))."""
    if not isinstance(raw, dict):
        check.problem("vars", f"expected a table of strings, got {type_name(raw)}")
        return (), ()
    plain, computed = [], []
    for name, value in raw.items():
        where = f"vars.{name}"
        if isinstance(value, dict):
            check.keys(value, where, ("sh",))
            command = check.string(value["sh"], f"{where}.sh") if "sh" in value else None
            if command is not None and command.strip():
                computed.append((name, command))
            elif "sh" not in value or command is not None:
                check.problem(where, 'a computed var is written { sh = "command" }, with a '
                                     "command that prints its value")
        elif isinstance(value, str):
            text = check.string(value, where)
            if text is not None:
                plain.append((name, text))
        else:
            check.problem(where, 'expected a string (or { sh = "command" }), got '
                                 f"{type_name(value)}")
    return tuple(plain), tuple(computed)


def load(path: str, fs: FileSystem | None = None) -> Flowfile:
    """The Flowfile at `path`, an absolute path (on `fs`, by default the real disk)."""
    return parse(path, read_toml(path, fs))


def resolve_path(file: str | os.PathLike[str] | None, directory: str | None) -> str:
    """Apply `-C` then `-f` (or discovery) the way the CLI and the API both do."""
    base = os.path.realpath(directory) if directory else os.getcwd()
    if file is not None:
        if not os.fspath(file):
            raise UsageError("-f needs the name of a Flowfile, such as -f Flowfile.example")
        found = flowfile_path(file, base)
        if found is None:
            where = os.path.join(base, file)
            if os.path.isdir(where):
                raise UsageError(f"{file}: a directory, not a Flowfile (-f names the file; "
                                 f"-C {file} runs in the directory)")
            if os.path.exists(where):
                raise UsageError(f"{file}: not a regular file, so no Flowfile")
            raise UsageError(f"{file}: no such Flowfile")
        return found
    return find_flowfile(base)
