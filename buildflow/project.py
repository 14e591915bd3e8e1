"""Flowfile declarations -> a Project: foreach instances, placeholders, globs, links, checks.

Everything that can be wrong with a Flowfile is found here, before anything runs, and reported
together as one FlowfileError.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from buildflow import external, foreach, globbing, placeholders, pytasks, rootcheck, scripts
from buildflow.errors import FlowfileError, UsageError, did_you_mean, did_you_mean_path
from buildflow.flowfile import Flowfile, TaskDecl
from buildflow.fs import FileSystem, LocalFileSystem
from buildflow.graph import Graph
from buildflow.locate import canonical_flowfile, shown
from buildflow.model import NO_PATHS, Passthrough, Project, Settings, Task

if TYPE_CHECKING:
    from typing import Any

    from buildflow.declare import Declared


class _Staged(NamedTuple):
    """One instance between declaring its outputs and expanding its inputs."""

    decl: TaskDecl
    name: str
    values: dict[str, str]
    outputs: list[str]
    dirs: frozenset[str]
    inputs: list[str]


def _braced_fields(decl: TaskDecl) -> Iterator[tuple[str, str]]:
    """The fields of `decl` that hold a brace, by key: those a `{NAME}` group can be in.
    Most fields have none, and their keys are not written."""
    commands = decl.cmd or ()
    for index, text in enumerate(commands):
        if "{" in text:
            yield "cmd" if len(commands) == 1 else f"cmd[{index}]", text
    for key in ("inputs", "outputs", "foreach"):
        for index, text in enumerate(getattr(decl, key)):
            if "{" in text:
                yield f"{key}[{index}]", text
    for key, value in (("depfile", decl.depfile), ("cwd", decl.cwd)):
        if value and "{" in value:
            yield key, value
    for name, text in decl.env:
        if "{" in text:
            yield f"env.{name}", text


def _input_where(decl: TaskDecl, offset: int) -> str:
    """Where input `offset` of `decl` is written; below 0, a foreach's item: its glob."""
    return f"tasks.{decl.name}." + (f"inputs[{offset}]" if offset >= 0 else "foreach")


class _Resolver:
    def __init__(self, path: str, root: str, settings: Settings, variables: Mapping[str, str],
                 hidden: frozenset[str], args: Passthrough | None = None,
                 fs: FileSystem | None = None) -> None:
        self.file = shown(path)  # as messages name it
        self.root = root
        # its path from the root, as outputs are written (a build script may be in a
        # subdirectory of the root its Project names, or outside it)
        self.name = os.path.relpath(path, root).replace(os.sep, "/")
        self.script = path in scripts.SCRIPTS  # not a Flowfile: a build script declared it
        self.fs = fs or LocalFileSystem(root)
        self.settings = settings
        self.vars = dict(variables)
        self._known: dict[bool, tuple[tuple[str, ...], frozenset[str], dict[str, str]]] = {}
        # (text, in a command, in a foreach) -> what check_placeholders says of it
        self._findings: dict[tuple[str, bool, bool], list[tuple[bool, str]]] = {}
        self._unknown_names: dict[tuple[str, bool], tuple[bool, str] | None] = {}
        self.cache_dir = globbing.normalize(settings.cache_dir)
        self.disk = globbing.DiskIndex(self.fs, skip=[self.cache_dir], hidden=hidden)
        self.hidden = hidden
        self.problems: list[str] = []
        self.missing: list[str] = []  # those of `problems` a path on no disk causes
        self.wrong: set[str] = set()  # where a cause of problems was found
        self.warnings: list[str] = []
        self.declared: dict[str, str] = {}  # output -> instance name
        self.declared_index = globbing.PathIndex(self.declared)  # for globs to match
        self.where: dict[str, str] = {}  # output -> the key that declared it
        self.dirs: dict[str, str] = {}  # directory output -> instance name
        self.own: dict[str, set[str]] = {}  # task -> the outputs of all its instances
        self.real_root = self.fs.real_path("")
        # output dir -> (its real path if outside the root, else None; its path from the root
        # with the links on the way resolved)
        self.real_parents: dict[str, tuple[str | None, str]] = {}
        self.aliases: dict[str, str] = {}  # an output's path without links -> as declared
        self.physical_cwds: dict[str, str] = {}  # a task's cwd -> the directory it really is
        self.linked_cwd = False  # some task's cwd leads through a symlink
        self.used_names: dict[tuple[str, ...], frozenset[str]] = {}  # templates -> their names
        self.args = placeholders.ARGS_SLOT if args else ""
        # foreach tasks over files this build writes -> globs of every output they can declare
        self.templates: dict[str, list[str]] = {}
        # A task found again during a build once all it waits for has run: a path a
        # directory output or an instance to come would write must be there now. (Not so
        # for the instances of a foreach, found once its glob's writers have run: they wait
        # for the writers of their other inputs after that.)
        self.written = False
        self.code: dict[str, pytasks.Code] = {}  # py reference -> its module files and hashes
        self.sources: set[str] = set()  # inputs named as they are that no task writes
        # Instances whose output another instance declares too, with the problem, decided
        # once every directory output is known (`settle_duplicates`): (instance, item, where,
        # problem)
        self.duplicates: list[tuple[str, str, str, str]] = []

    def raise_problems(self) -> None:
        if self.problems:
            raise FlowfileError(self.problems, self.missing)

    def check_cache_dir(self) -> None:
        """Where the records go must be a directory, or nothing yet: a file there (a stray
        `.bflow`, `cache_dir = "data.txt"`) would fail every command on its own terms."""
        found = self.fs.stat(self.cache_dir)
        if found is not None and not found.is_dir:
            self.problem("settings.cache_dir", f"'{self.cache_dir}' is a file, and bflow keeps "
                         "its records, logs and lock in a directory there: move the file away, "
                         "or set settings.cache_dir to another path")

    def problem(self, where: str, message: str, *, cause: bool = False,
                missing: bool = False) -> None:
        """Say what is wrong at `where`; `missing`: that a path is on no disk. A `cause` (a
        misspelt placeholder, an unset `{env.NAME}`) is said and the value taken as wrong:
        what later checks of it find (`output ''`, an input `{ouput}` on no disk) would only
        repeat it, and is left out."""
        if cause:
            self.wrong.add(where)
        elif where in self.wrong:
            return
        self.problems.append(f"{self.file}: {where}: {message}")
        if missing:
            self.missing.append(self.problems[-1])

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {where}: {message}")

    def check_placeholders(self, decl: TaskDecl) -> None:
        """Refuse `{NAME}` groups that are surely a misspelt var or placeholder (`{ouput}`
        would reach the command as written); warn about looser near-misses and about foreach
        placeholders outside foreach."""
        for key, text in _braced_fields(decl):
            findings = self._placeholder_findings(text, key.startswith(("cmd", "env")),
                                                  bool(decl.foreach))
            where = f"tasks.{decl.name}.{key}" if findings else ""
            for refused, message in findings:
                if refused:
                    self.problem(where, message, cause=True)
                else:
                    self.warn(where, message)

    def _placeholder_findings(self, text: str, action: bool,
                              foreach: bool) -> list[tuple[bool, str]]:
        """What `check_placeholders` says of `text` in a field of a command (`action`) or
        not, of a foreach task or not: (refused, message), in order. Found once per project
        for each: a generated Flowfile repeats a command in thousands of tasks."""
        found = self._findings.get((text, action, foreach))
        if found is not None:
            return found
        found = self._findings[(text, action, foreach)] = []
        known_set = self._known_names(foreach)[1]
        if not action and "args" in placeholders.names_in([text]):
            found.append((True, "'{args}' (what follows -- on the command line) is for cmd "
                                "and env only"))
        for written, meant in placeholders.misspelt_env(text):
            found.append((True, f"'{written}' is not a placeholder (did you mean '{meant}'?); "
                                f"for literal braces write '{{{written}}}'"))
        for name in placeholders.unknown(text, known_set):
            finding = self._unknown_name(name, foreach)
            if finding is not None:
                found.append(finding)
        return found

    def _unknown_name(self, name: str, foreach: bool) -> tuple[bool, str] | None:
        """What `check_placeholders` says of a `{name}` that is no var or placeholder of a
        task (of a foreach or not): (refused, message), or None (an awk word, a name near
        none). Found once per project for each: a literal `{checksum}` in thousands of
        different commands was matched against every var in each."""
        key = (name, foreach)
        if key not in self._unknown_names:
            self._unknown_names[key] = None if name in placeholders.AWK_WORDS \
                else self._judge_unknown(name, foreach)
        return self._unknown_names[key]

    def _judge_unknown(self, name: str, foreach: bool) -> tuple[bool, str] | None:
        if name in placeholders.ITEM_NAMES:
            return False, f"'{{{name}}}' is a placeholder only under foreach; it is left as written"
        known, _, lowered = self._known_names(foreach)
        typo = placeholders.misspelt(name, known)
        if typo:
            return True, (f"'{{{name}}}' is neither a var nor a placeholder (did you mean "
                          f"'{typo}'?); for literal braces write '{{{{{name}}}}}'")
        hint = f" (did you mean '{lowered[name.lower()]}'?)" \
            if name.lower() in lowered else did_you_mean(name, known)
        return (False, f"'{{{name}}}' is not a placeholder, so it is left as written{hint}") \
            if hint else None

    def _known_names(self, foreach: bool) -> tuple[tuple[str, ...], frozenset[str],
                                                   dict[str, str]]:
        """The vars and placeholders a task may name (a foreach's also its item's): in order,
        as a set, and by their lower case. Made once per project for each kind of task."""
        found = self._known.get(foreach)
        if found is None:
            names = (*self.vars, *(n for n in placeholders.BUILTIN_NAMES
                                   if foreach or n not in placeholders.ITEM_NAMES))
            found = self._known[foreach] = (names, frozenset(names),
                                            {name.lower(): name for name in names})
        return found

    def declare(self, decl: TaskDecl, name: str,
                values: dict[str, str]) -> tuple[list[str], frozenset[str]]:
        """The instance's outputs, and those of them that are directories (most tasks have
        none, and share one empty set: a set made per task was a tenth of a large load's
        transient memory)."""
        outputs: list[str] = []
        dirs: list[str] = []
        for index, raw in enumerate(decl.outputs):
            where = f"tasks.{decl.name}.outputs[{index}]"
            expanded = placeholders.expand(raw, values)
            path = self.in_root(expanded)
            unlinked = self._unlinked(path) if path and not globbing.is_outside(path) else path
            if globbing.is_outside(path) or not path:
                self.problem(where, f"output '{expanded}' is outside the project root "
                                    f"{self.root}; write outputs inside it")
            elif self.cache_dir in (path, unlinked) or path.startswith(self.cache_dir + "/") \
                    or unlinked.startswith(self.cache_dir + "/"):
                self.problem(where, f"output '{expanded}' is inside the cache dir "
                                    f"'{self.cache_dir}'")
            elif self.cache_dir.startswith(path + "/"):
                self.problem(where, f"output '{expanded}' holds the cache dir "
                                    f"'{self.cache_dir}', where bflow keeps its records; set "
                                    "settings.cache_dir outside it")
            elif self.name in (path, unlinked):
                what = "the build script declaring this project: it runs before anything " \
                    "else does" if self.script else "this Flowfile: bflow reads it before " \
                    "anything runs"
                self.problem(where, f"output '{expanded}' is {what}, and `bflow clean` would "
                                    "delete it")
            elif escape := self._escaping_parent(path):
                self.problem(where, f"output '{expanded}' goes through a symlink that leaves the "
                                    f"project root (to {escape}); write outputs inside it")
            elif (other := self._declared_as(path, unlinked)) is not None:
                through = "" if other == path else \
                    f" as '{other}', the same file through a symlinked directory"
                problem = (f"output '{path}' of task '{name}' is also declared by task "
                           f"'{self.declared[other]}' ({self.where[other]}){through}; each file "
                           "has one producer")
                if "item" in values:  # an instance: its item may be a file a build replaces
                    self.duplicates.append((name, values["item"], where, problem))
                else:
                    self.problem(where, problem)
            else:
                if expanded.endswith("/"):
                    dirs.append(path)
                    self.dirs[path] = name
                self.declared[path] = name
                self.where[path] = where
                self.own.setdefault(decl.name, set()).add(path)
                if unlinked != path:
                    self.aliases[unlinked] = path
                outputs.append(path)
        return outputs, frozenset(dirs) if dirs else NO_PATHS

    def stage(self, decl: TaskDecl, item: foreach.Item | None) -> _Staged:
        """Declare the outputs of one instance (the task itself without `foreach`)."""
        values = foreach.instance_values(self.vars, decl, item)
        outputs, dirs = self.declare(decl, values["task"], values)
        inputs = ["{item}", *decl.inputs] if item else list(decl.inputs)
        return _Staged(decl, values["task"], values, outputs, dirs, inputs)

    def _escaping_parent(self, path: str) -> str | None:
        """The real directory outside the root that `path`'s parent resolves to, if any."""
        return self._real_parent(path.rpartition("/")[0])[0]

    def _real_parent(self, parent: str) -> tuple[str | None, str]:
        found = self.real_parents.get(parent)
        if found is None:
            real = self.fs.real_path(parent)
            escape = rootcheck.escape_of(self.real_root, real)
            rel = parent if escape is not None or real == os.path.join(self.real_root, parent) \
                else os.path.relpath(real, self.real_root).replace(os.sep, "/")
            found = self.real_parents[parent] = (escape, "" if rel == "." else rel)
        return found

    def _declared_as(self, path: str, unlinked: str) -> str | None:
        """The output declared already that is the file `path` names (`unlinked`, with its
        links resolved): `path` itself, or the same file through a symlinked directory
        (`alias/x.txt` and `out/x.txt`, with `alias -> out`), whichever way each was written.
        Each file has one producer."""
        if path in self.declared:
            return path
        if unlinked != path and unlinked in self.declared:
            return unlinked
        return self.aliases.get(unlinked)

    def in_root(self, written: str) -> str:
        """A path as written, normalized (`globbing.normalize`), and relative to the root when
        it is an absolute path inside it: each file of the project has one name, whichever
        way it is written, so a reader by absolute path still waits for its writer."""
        path = globbing.normalize(written)
        if path.startswith("/"):
            for root in (self.root, self.real_root):
                prefix = root.rstrip("/") + "/"
                if path.startswith(prefix):
                    return path[len(prefix):]
        return path

    def _unlinked(self, path: str) -> str:
        """`path` with the symlinked directories on its way resolved (inside the root). Asked
        of every output and every input named on its own: `rpartition`, not `posixpath`, whose
        calls were a tenth of a large project's load."""
        parent, _, name = path.rpartition("/")
        rel = self._real_parent(parent)[1] if parent else ""
        return path if rel == parent else f"{rel}/{name}" if rel else name

    def physical_cwd(self, cwd: str) -> str:
        """The directory `cwd` really is, from the root: through a symlinked directory, the
        `..` of a path rebased on it climbs from the link's target, as the command's does, and
        a depfile's paths are read from there too."""
        if cwd not in self.physical_cwds:
            real = self.fs.real_path(cwd)
            if real == os.path.normpath(os.path.join(self.real_root, cwd)):
                self.physical_cwds[cwd] = cwd
            else:
                self.physical_cwds[cwd] = os.path.relpath(real, self.real_root).replace(
                    os.sep, "/")
                self.linked_cwd = True
        return self.physical_cwds[cwd]

    def check_dir_overlaps(self) -> None:
        """A file output inside another task's directory output would have two producers."""
        if not self.dirs:  # the usual project: no directory output to be inside
            return
        for path, name in self.declared.items():
            owner = self.dir_producer(posixpath.dirname(path))
            if owner is not None and owner != name:
                self.problem(self.where[path], f"output '{path}' of task '{name}' is inside a "
                                               f"directory output of task '{owner}'")

    def settle_duplicates(self, staged: dict[str, list[_Staged]] | None = None) -> None:
        """Report the instances that declare another's output. At load (`staged` given), an
        instance whose item is a file in a directory output is left out of `staged` instead:
        what a listing from before the build shows there may be gone once its producer runs,
        and the build decides on the instances the producer's run leaves (reporting a
        duplicate among those)."""
        dropped = set()
        for name, item, where, problem in self.duplicates:
            if staged is None or self.dir_producer(item) is None:
                self.problem(where, problem)
            else:
                dropped.add(name)
        if staged is not None and dropped:
            for decl, entries in staged.items():
                staged[decl] = [entry for entry in entries if entry.name not in dropped]

    def dir_producer(self, path: str) -> str | None:
        """The instance whose directory output is `path` or holds it."""
        if not self.dirs:  # no task declares a directory output: the usual project
            return None
        while path not in ("", "/"):
            if path in self.dirs:
                return self.dirs[path]
            path = posixpath.dirname(path)
        return None

    def writers(self, pattern: str, base: str) -> list[str]:
        """The tasks, other than those of `base`, that can write files `pattern` matches but no
        Flowfile names: instances with a directory output it covers, and foreach tasks over
        such files (by their name: the group of their instances)."""
        if not self.dirs:  # the usual project: every output is declared
            return []
        found = [owner for path, owner in self.dirs.items()
                 if owner.partition(":")[0] != base and globbing.may_overlap(pattern, path + "/**")]
        found += [stub for stub, globs in self.templates.items()
                  if stub != base and any(globbing.may_overlap(pattern, g) for g in globs)]
        return found

    def find_dynamic(self, decls: tuple[TaskDecl, ...]) -> dict[str, list[str]]:
        """The foreach tasks whose globs match files this build writes, with the tasks that
        write them: their instances are known only once those have run. A foreach over the
        outputs of such a foreach is one too, so this repeats until none is added."""
        dynamic: dict[str, list[str]] = {}
        while True:
            added = False
            for decl in decls:
                if not decl.foreach or decl.name in dynamic:
                    continue
                after = [writer for pattern in decl.foreach if not pattern.startswith("!")
                         for writer in self.writers(
                             globbing.normalize(placeholders.expand(pattern, self.vars)),
                             decl.name)]
                if after:
                    dynamic[decl.name] = list(dict.fromkeys(after))
                    self.templates[decl.name] = foreach.output_globs(decl, self.vars)
                    added = True
            if not added:
                return dynamic

    def expand_inputs(self, staged: _Staged) -> tuple[list[str], list[str]]:
        """The input files in the order written (each glob's matches sorted, each file once),
        and the tasks that write files those inputs may match but no Flowfile names."""
        decl, name = staged.decl, staged.name
        own = self.own.get(decl.name, NO_PATHS)
        chosen: dict[str, None] = {}
        writers: dict[str, None] = {}
        values = foreach.pattern_values(staged.values)
        for index, raw in enumerate(staged.inputs):
            offset = index - (len(staged.inputs) - len(decl.inputs))  # < 0: the item
            written = placeholders.expand(raw.removeprefix("!"), values)
            expanded = self.in_root(written)
            if written.endswith("/") and globbing.is_glob(expanded):
                bang = "!" if raw.startswith("!") else ""
                self.problem(_input_where(decl, offset),
                             f"'{bang}{written}' ends in '/', so it would match directories, "
                             f"and inputs are files; for the files in them write "
                             f"'{bang}{expanded}/**'")
                continue
            if raw.startswith("!"):
                globbing.exclude(chosen, expanded)
                continue
            if expanded in self.dirs:  # a directory output stands for the files in it
                expanded += "/**"
            if globbing.is_glob(expanded):
                matches = globbing.match(expanded, self.disk, self.declared_index, exclude=own)
                later = self.writers(expanded, decl.name)
                if not matches and not later:
                    self.warn(_input_where(decl, offset), f"'{expanded}' matches no file")
                chosen.update(dict.fromkeys(matches))
                writers.update(dict.fromkeys(later))
            elif not expanded:
                self.problem(_input_where(decl, offset), "an empty input path")
            elif expanded in self.declared:
                chosen[expanded] = None
            elif not globbing.is_outside(expanded) and \
                    (alias := self._declared_as(expanded, self._unlinked(expanded))) is not None:
                self.problem(_input_where(decl, offset),
                             f"input '{expanded}' of task '{name}' is the output '{alias}' "
                             f"of task '{self.declared[alias]}' through a symlinked "
                             f"directory; name it '{alias}', as that task writes it, so "
                             "that this one waits for it")
            elif not self.written and (producer := self.dir_producer(expanded)) is not None:
                chosen[expanded] = None  # in a directory output: found again once written
                writers[producer] = None
            elif not self.written and self.templates and (later := [
                    stub for stub in self.writers(expanded, decl.name)
                    if stub in self.templates]):  # an output of an instance to come
                chosen[expanded] = None
                writers.update(dict.fromkeys(later))
            else:
                problem, missing = self.file_problem(expanded, name)
                if problem:
                    self.problem(_input_where(decl, offset), problem, missing=missing)
                else:
                    chosen[expanded] = None
                    if offset >= 0:  # named in `inputs`, not a foreach's match
                        self.sources.add(expanded)
        return list(chosen), list(writers)

    def file_problem(self, path: str, name: str) -> tuple[str, bool]:
        """What is wrong with input `path` of task `name` on disk ("" when it is a file), and
        whether it is that no file is there: one stat for the usual case, since every foreach
        instance has one such input."""
        try:
            found = None if path in self.hidden else self.fs.stat(path)
        except OSError:  # cannot be searched: not an input bflow can read
            found = None
        if found is None:
            target = self.fs.link_target(path)
            if target is not None:
                return f"input '{path}' is a symlink to '{target}', which does not exist", True
            hint = did_you_mean_path(path, self.declared)
            return f"input '{path}' of task '{name}' is neither on disk nor an output of any " \
                   f"task{hint}", True
        if found.is_dir:
            return f"'{path}' is a directory; to depend on its files write '{path}/**'", False
        return "", False

    def deps_of(self, decl: TaskDecl, instances: Mapping[str, list[str]]) -> list[str]:
        """Instance names for `deps` (a foreach task stands for all its instances)."""
        deps: list[str] = []
        for index, dep in enumerate(decl.deps):
            base = dep.partition(":")[0]
            if dep in instances:
                deps.extend(instances[dep])
            elif base in instances and dep in instances[base]:
                deps.append(dep)
            elif base != dep and base in self.templates and instances.get(base, [])[:1] == [base]:
                # an instance not found yet of a foreach over files a build writes: all that
                # will be, as on the command line (its group stands for them)
                deps.append(base)
            else:
                names = [*instances, *(n for group in instances.values() for n in group)]
                self.problem(f"tasks.{decl.name}.deps[{index}]",
                             f"unknown task '{dep}'{did_you_mean(dep, names)}")
        return deps

    def py_code(self, decl: TaskDecl, name: str, inputs: Sequence[str]) -> str:
        """The content hash of the module files of `decl`'s function, found once per
        reference; a reference that cannot work is a problem at `py`. A module another task
        writes is no part of it: hashed at load, before its writer runs, it would be stale by
        one build. It must be among `inputs` instead, read once its writer has run."""
        if not decl.py:
            return ""
        if decl.py not in self.code:
            code = self.code[decl.py] = pytasks.code_of(decl.py, self.root)
            if code.problem:
                self.problem(f"tasks.{decl.name}.py", code.problem)
        code = self.code[decl.py]
        if not self.declared or not code.files:
            return code.digest
        prefix = os.path.join(self.real_root, "")
        writers = {path: (rel, writer) for path, digest in code.files
                   if digest != scripts.ABSENT and path.startswith(prefix)
                   and (writer := self._writer(rel := path[len(prefix):])) is not None}
        for rel, writer in writers.values():
            if writer == name:  # in its own directory output: `bflow clean` deletes it
                self.problem(f"tasks.{decl.name}.py", f"its function's module '{rel}' is "
                             "inside the task's own directory output, which `bflow clean` "
                             "deletes whole; keep the module out of it")
        written = {path: rel for path, (rel, writer) in writers.items() if writer != name}
        if not written:
            return code.digest
        for path, rel in written.items():
            if rel not in inputs:
                self.problem(f"tasks.{decl.name}.py", f"its function imports '{rel}', which "
                             f"task '{writers[path][1]}' writes: list it in `inputs`, so that "
                             "it is read once that task has run")
        return pytasks.digest_of([(path, digest) for path, digest in code.files
                                  if digest != scripts.ABSENT and path not in written], self.root)

    def _writer(self, path: str) -> str | None:
        """The instance that writes `path`: as its output, or into its directory output."""
        writer = self.declared.get(path)
        return writer if writer is not None else self.dir_producer(posixpath.dirname(path))

    def names_in(self, templates: tuple[str, ...]) -> frozenset[str]:
        """The placeholder names `templates` use, found once for all instances of a task."""
        names = self.used_names.get(templates)
        if names is None:
            names = self.used_names[templates] = placeholders.names_in(templates)
        return names

    def task(self, staged: _Staged, instances: Mapping[str, list[str]]) -> Task:
        decl, name, values, outputs = staged.decl, staged.name, staged.values, staged.outputs
        settings = self.settings
        inputs, writers = self.expand_inputs(staged)
        if decl.name in self.templates:  # an instance known only once its group expands
            writers.insert(0, decl.name)
        values = dict(values, output=outputs[0] if outputs else "",
                      input=inputs[0] if inputs else "", args=self.args)
        depfile = None
        if decl.depfile:
            depfile = self.in_root(placeholders.expand(decl.depfile, values))
            if globbing.is_outside(depfile) or not depfile:
                self.problem(f"tasks.{decl.name}.depfile",
                             f"'{depfile}' is outside the project root")
            values["depfile"] = depfile
        cwd = self.physical_cwd(globbing.normalize(placeholders.expand(decl.cwd, values))) \
            if decl.cwd else ""
        paths = {"inputs": inputs, "outputs": outputs, "input": inputs[:1],
                 "output": outputs[:1], "depfile": [depfile] if depfile else []}
        root = self.root
        in_cmd = placeholders.command_values(values, paths, root, cwd, quote=True,
                                             wanted=self.names_in(decl.cmd or ()))
        env = (*settings.env, *decl.env)
        in_env = placeholders.command_values(
            values, paths, root, cwd, quote=False,
            wanted=self.names_in(tuple(v for _, v in env))) if env else {}
        return Task(
            name=name, base=decl.name,
            commands=tuple(placeholders.expand(c, in_cmd) for c in decl.cmd or ()),
            inputs=tuple(inputs), outputs=tuple(outputs), dir_outputs=staged.dirs,
            deps=tuple(dict.fromkeys(self.deps_of(decl, instances))) if decl.deps else (),
            depfile=depfile,
            env=tuple((k, placeholders.expand(v, in_env)) for k, v in env) if env else (),
            cwd=cwd, shell=settings.shell,
            retries=settings.retries if decl.retries is None else decl.retries,
            retry_delay=settings.retry_delay if decl.retry_delay is None else decl.retry_delay,
            timeout=settings.timeout if decl.timeout is None else decl.timeout,
            always=decl.always, description=decl.description, item=values.get("item"),
            known_after=tuple(writers),
            interactive=decl.interactive,
            cache=decl.cache,
            py=decl.py or "", py_code=self.py_code(decl, name, inputs),
            vars=tuple(self.vars.items()) if decl.py else (), when=decl.when,
            declares_inputs=bool(decl.inputs),
        )

    def group_of_instances(self, decl: TaskDecl, after: list[str],
                           instances: Mapping[str, list[str]]) -> Task:
        """The group that stands for the instances of a foreach over files this build writes,
        known only once `after` have run: it waits for them and for the foreach's `deps`."""
        return Task(name=decl.name, base=decl.name, commands=(),
                    deps=tuple(self.deps_of(decl, instances)), shell=self.settings.shell,
                    description=decl.description, known_after=tuple(after), expands=True)

    def check_depfiles(self, graph: Graph) -> None:
        """A depfile is its task's own file, which the task writes and `bflow clean` deletes:
        not the Flowfile, an output of a task, a source a task reads by its name, or another
        instance's depfile (`depfile = "deps.d"` in a foreach, which every instance writes)."""
        writer: dict[str, str] = {}
        shared: set[str] = set()  # said once, not once per instance more
        for task in graph.tasks.values():
            path = task.depfile
            if not path:
                continue
            other = writer.setdefault(path, task.name)
            if other != task.name:
                if path not in shared:
                    shared.add(path)
                    self.problem(f"tasks.{task.base}.depfile",
                                 f"depfile '{path}' is written by both '{other}' and "
                                 f"'{task.name}'; give each instance its own (e.g. "
                                 "\"{output}.d\")")
                continue
            names = (path, self._unlinked(path)) if not globbing.is_outside(path) else (path,)
            if self.name in names:
                whose = "this Flowfile"
            elif (output := next((p for p in names if p in graph.producer), None)) is not None:
                whose = f"an output of task '{graph.producer[output]}'"
            elif any(p in self.sources for p in names):
                whose = "a source a task reads"
            elif (owner := self.dir_producer(posixpath.dirname(path))) not in (None, task.name):
                # its every write would change that directory: the owner ran again each time
                whose = f"inside a directory output of task '{owner}'"
            else:
                continue
            self.problem(f"tasks.{task.base}.depfile",
                         f"depfile '{path}' of task '{task.name}' is {whose}; bflow clean "
                         f"deletes a task's depfile, so name a file of the task's own "
                         f"(e.g. \"{path}.d\")")

    def check_cycle(self, graph: Graph) -> None:
        """Report a cycle as `a -> b -> a` (a needs b), saying what makes each link."""
        cycle = graph.find_cycle()
        if not cycle:
            return
        reasons = []
        for needs, needed in zip(cycle, cycle[1:]):
            task = graph.tasks[needs]
            read = [p for p in task.inputs if graph.producer_of(p) == needed]
            if read:
                reasons.append(f"{needs} reads '{read[0]}', an output of {needed}")
            elif needed in task.deps:
                reasons.append(f"{needs} lists {needed} in deps")
            elif needed == task.base:
                reasons.append(f"{needs} is an instance of {needed}")
            else:
                reasons.append(f"{needs} globs files {needed} writes")
        first = graph.tasks[cycle[0]]
        key = "deps" if cycle[1] in first.deps else "foreach" if first.expands else "inputs"
        self.problem(f"tasks.{first.base}.{key}",
                     "dependency cycle: " + " -> ".join(cycle) + " (" + "; ".join(reasons) + ")")


class Expander:
    """Expands again, on the disk as the build has left it, the tasks whose globs match files
    the build writes (`Task.known_after`): the scheduler asks when such a task becomes ready,
    once the tasks writing those files have run. Each answer lists the disk afresh."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.decls = {decl.name: decl for decl in map(TaskDecl._make, project.decls)}

    def task(self, task: Task, tasks: Mapping[str, Task]) -> Task:
        """`task` with its inputs, and all that names them, found again; FlowfileError when
        one is now wrong (a path that no longer exists)."""
        decl = self.decls[task.base]
        r = self._resolver(tasks, leaving={task.name})
        r.written = True  # all it waits for has run
        item = None if task.item is None else foreach.item_of(decl, r.vars, task.item)
        found = r.task(r.stage(decl, item), _instances(tasks))
        r.settle_duplicates()
        r.raise_problems()
        return found

    def instances(self, group: Task, tasks: Mapping[str, Task]) -> dict[str, Task]:
        """The instances of the foreach `group` stands for, as its glob matches now."""
        decl = self.decls[group.base]
        r = self._resolver(tasks, leaving={name for name, task in tasks.items()
                                           if task.base == decl.name and task.item is not None})
        owners = {path: tasks[name].base for path, name in r.declared.items()}
        own = [path for task in tasks.values() if task.base == decl.name
               for path in (*task.outputs, *([task.depfile] if task.depfile else []))]
        staged = [r.stage(decl, item)
                  for item in foreach.settled_items(decl, r.vars, r.disk, owners, own)]
        r.settle_duplicates()
        r.check_dir_overlaps()
        instances = _instances(tasks)
        instances[decl.name] = [decl.name, *(entry.name for entry in staged)]
        found = {entry.name: r.task(entry, instances) for entry in staged}
        r.raise_problems()
        return found

    def _resolver(self, tasks: Mapping[str, Task], leaving: set[str]) -> _Resolver:
        """A resolver that knows the outputs of `tasks` but those `leaving`, which it declares
        again."""
        project = self.project
        r = _Resolver(project.flowfile, project.root, project.settings, project.vars,
                      frozenset(), fs=project.fs)
        for task in tasks.values():
            if task.name in leaving:
                continue
            for path in task.outputs:
                r.declared[path] = task.name
                r.where[path] = f"tasks.{task.base}.outputs"
                r.own.setdefault(task.base, set()).add(path)
                if path in task.dir_outputs:
                    r.dirs[path] = task.name
        r.templates = {base: foreach.output_globs(decl, r.vars)
                       for base, decl in self.decls.items()
                       if base in tasks and tasks[base].expands}
        return r


def _instances(tasks: Mapping[str, Task]) -> dict[str, list[str]]:
    """The instance names of every task, by task (a foreach's group of instances among them),
    as `deps` entries name them."""
    found: dict[str, list[str]] = {}
    for task in tasks.values():
        found.setdefault(task.base, []).append(task.name)
    return found


def _check_overrides(flowfile: Flowfile, overrides: Mapping[str, str]) -> None:
    """An override of a var the Flowfile does not declare is a typo (`GREETNG=x`) that would
    otherwise change nothing, silently."""
    declared = dict((*flowfile.vars, *flowfile.computed))
    for name, value in overrides.items():
        if not isinstance(name, str) or not isinstance(value, str):  # from the Python API
            raise TypeError(f"overrides: {name!r}: {value!r}: a var's name and value are "
                            f"strings (write {str(name)!r}: {str(value)!r})")
        if name not in declared:
            hint = did_you_mean(name, declared) or \
                (f" (its vars: {', '.join(declared)})" if declared else "")
            raise UsageError(f"{name}={value}: {shown(flowfile.path)} declares no "
                             f"var '{name}'{hint}; declare it under [vars] to override it")


def resolve(flowfile: Flowfile, overrides: Mapping[str, str] | None = None,
            hidden: frozenset[str] = frozenset(), args: Passthrough | None = None,
            fs: FileSystem | None = None) -> Project:
    """Expand and check every task; raise FlowfileError listing every problem found. `hidden`
    files on disk are taken as gone; `args` gives `{args}` to the tasks it names; `fs` is the
    disk the globs and inputs are looked for on (by default the real one)."""
    overrides = overrides or {}
    _check_overrides(flowfile, overrides)
    flowfile, env_problems, used_env = external.fill_environment(flowfile, os.environ)
    computed, computed_problems = external.compute_vars(flowfile, skip=overrides)
    r = _Resolver(flowfile.path, flowfile.root, flowfile.settings,
                  {**dict(flowfile.vars), **computed, **overrides}, hidden, args, fs)
    for where, message in env_problems:
        r.problem(where, message, cause=True)
    r.problems += computed_problems
    r.check_cache_dir()
    try:
        items = foreach.find_items(flowfile.tasks, r.vars, r.disk)
    except foreach.Endless as endless:
        decls = {decl.name: decl for decl in flowfile.tasks}
        own = [(name, key) for name in endless.names
               for key, path in (*((f"outputs[{i}]", o) for i, o in enumerate(
                   decls[name].outputs)), ("depfile", decls[name].depfile or ""))
               if path.strip("./") == "{item}"]
        for name, key in own:  # writing its own item: the reason, not its consequence
            r.problem(f"tasks.{name}.{key}", "'{item}' is the file the instance reads: each "
                      "would write over its own source; write another path (\"out/{name}\")")
        if not own:
            r.problem(f"tasks.{endless.names[0]}.foreach",
                      f"the items of foreach tasks {', '.join(endless.names)} never settle: "
                      "their globs take files they write as items, one more generation each "
                      "round; leave those out with a `!` entry")
        r.raise_problems()
    staged: dict[str, list[_Staged]] = {}
    for decl in flowfile.tasks:
        r.check_placeholders(decl)
        entries: list[foreach.Item | None] = list(items[decl.name]) if decl.foreach else [None]
        staged[decl.name] = [r.stage(decl, item) for item in entries]
    r.settle_duplicates(staged)
    r.check_dir_overlaps()
    dynamic = r.find_dynamic(flowfile.tasks)
    instances = {name: [entry.name for entry in entries] for name, entries in staged.items()}
    for decl in flowfile.tasks:
        if decl.name in dynamic:
            instances[decl.name].insert(0, decl.name)
        elif decl.foreach and not staged[decl.name]:
            r.warn(f"tasks.{decl.name}.foreach", "matches no file, so the task has no instances")
    tasks: dict[str, Task] = {}
    for decl in flowfile.tasks:  # a group of instances comes first, where its task is written
        if decl.name in dynamic:
            tasks[decl.name] = r.group_of_instances(decl, dynamic[decl.name], instances)
        for entry in staged.pop(decl.name):  # each staged entry goes once its task is made
            tasks[entry.name] = r.task(entry, instances)
    graph = Graph(tasks, empty=[decl.name for decl in flowfile.tasks
                                if not instances[decl.name]])
    for index, target in enumerate(flowfile.settings.default or ()):
        if target in instances:
            continue
        try:
            graph.select([target], r.root)
        except UsageError as exc:
            r.problem(f"settings.default[{index}]", str(exc))
    r.check_depfiles(graph)
    for decl in flowfile.tasks:  # a name that is also a path: which one a target means
        writer = graph.producer.get(decl.name)
        if writer is not None and tasks[writer].base != decl.name:
            r.warn(f"tasks.{decl.name}", f"its name is also the path of an output of task "
                                         f"'{writer}': `bflow {decl.name}` builds this task, "
                                         f"`bflow ./{decl.name}` that file")
    if not r.problems:
        r.check_cycle(graph)
    r.raise_problems()
    if args is not None:
        _give_args(tasks, graph.named(args.targets, flowfile.settings.default, r.root,
                                      args.cwd), args.words)
    later = {task.base for task in tasks.values() if task.known_after}
    return Project(root=r.root, flowfile=flowfile.path, settings=flowfile.settings,
                   vars=r.vars, tasks=tasks, graph=graph, warnings=tuple(r.warnings),
                   globbed_dirs=frozenset(r.disk.dirs_read), globs=frozenset(r.disk.globs),
                   decls=tuple(tuple(decl) for decl in flowfile.tasks if decl.name in later),
                   # a linked cwd: where the link leads is read at every load; a kind's
                   # callable may read what no file of its plug-in holds (the environment)
                   volatile=used_env or bool(flowfile.computed) or args is not None
                   or r.linked_cwd or bool(flowfile.code),
                   args=args,
                   code=tuple(sorted({*(file for c in r.code.values() for file in c.files),
                                      *flowfile.code})),
                   sources=frozenset(r.sources), fs=fs)


def _give_args(tasks: dict[str, Task], named: list[str], words: tuple[str, ...]) -> None:
    """Fill `{args}` in place (the graph holds the same dict): the shell-quoted `words` for
    the `named` tasks, nothing for the others. Arguments that no named task takes are a
    mistake, as `just` takes them."""
    import shlex

    given = " ".join(map(shlex.quote, words))
    slot = placeholders.ARGS_SLOT
    takers = []
    for name, task in tasks.items():
        if not any(slot in text for text in (*task.commands, *(v for _, v in task.env))):
            continue
        value = given if name in named else ""
        if value:
            takers.append(name)
        tasks[name] = task._replace(
            commands=tuple(c.replace(slot, value) for c in task.commands),
            env=tuple((k, v.replace(slot, value)) for k, v in task.env))
    if not takers:
        shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
        raise UsageError(f"-- {' '.join(words)}: no task named ({shown or 'none'}) uses "
                         "{args}; write {args} in its cmd where the arguments go, or name "
                         "the task that takes them")


def load(path: str | os.PathLike[str] = "Flowfile",
         overrides: Mapping[str, str] | None = None,
         hidden: frozenset[str] = frozenset(), args: Passthrough | None = None,
         fs: FileSystem | None = None) -> Project:
    """Load and check a Flowfile (or the project a build script declared, by its path): the
    Python API's entry point. `fs`: the disk the project is on, rooted at the Flowfile's
    directory (by default the real one)."""
    from buildflow.flowfile import load as load_flowfile

    if fs is not None:
        return resolve(load_flowfile(os.fspath(path), fs), overrides, hidden, args, fs)
    real = os.path.realpath(path)
    if real in scripts.SCRIPTS:
        return _declared(real, scripts.SCRIPTS[real], overrides, hidden, args)
    flowfile = load_flowfile(canonical_flowfile(path))
    try:
        return resolve(flowfile, overrides, hidden, args)
    except FlowfileError:
        # The outputs the Flowfile no longer declares (of tasks gone from it, or that a task
        # no longer declares), which the build removes before it builds, may alone keep it
        # from loading: a foreach over them finds a cycle, or two items writing one output,
        # that a clean checkout has not. Load as the build will find the disk (as
        # `engine.as_built` does for status and -n); else the error stands.
        from buildflow.prune import leftovers

        left = leftovers(flowfile) - hidden
        if not left:
            raise
        try:
            return resolve(flowfile, overrides, hidden | left, args)
        except FlowfileError:
            pass
        raise


def _declared(path: str, declared: Declared, overrides: Mapping[str, str] | None,
              hidden: frozenset[str], args: Passthrough | None) -> Project:
    """The project the build script at `path` declared, named by its path; errors name the
    script. Its declarations are those the script made when it ran, so an edit of it since
    (seen by `watch`) asks for running it again."""
    from buildflow.flowfile import parse_objects

    name = shown(path)
    if not scripts.code_holds(declared.code):
        raise FlowfileError([f"{name}: it (or a module of the project it imports) changed "
                             f"since it started; run it again to load the change"])
    mistakes = [f"{name}: {problem}" for problem in declared.problems]
    if mistakes and not declared.data.get("tasks"):  # else "no tasks declared" follows them
        raise FlowfileError(mistakes)
    try:
        project = resolve(parse_objects(path, declared.data, declared.root), overrides, hidden,
                          args)
    except FlowfileError as exc:  # said with the declarations' own mistakes, as one list
        if mistakes:
            raise FlowfileError([*mistakes, *exc.problems]) from None
        raise
    if mistakes:
        raise FlowfileError(mistakes)
    return project._replace(code=tuple(sorted({*project.code, *declared.code})))


def from_dict(data: Mapping[str, Any], root: str | os.PathLike[str] = ".",
              overrides: Mapping[str, str] | None = None,
              hidden: frozenset[str] = frozenset(),
              args: Passthrough | None = None) -> Project:
    """A project from Python objects shaped like a Flowfile's TOML (`{"tasks": {...}}`),
    rooted at `root`; checked exactly as a Flowfile is (errors name it `<python>`)."""
    from buildflow.flowfile import parse_objects

    project = resolve(parse_objects(os.path.join(os.path.realpath(root), "<python>"), data),
                      overrides, hidden, args)
    return project._replace(data=data)


def reload(project: Project, hidden: frozenset[str] = frozenset()) -> Project:
    """Load the project again from where it came from, with the same vars; `hidden` files
    are taken as gone (`engine.as_built`)."""
    if project.data is not None:
        return from_dict(project.data, project.root, project.vars, hidden, project.args)
    return load(project.flowfile, project.vars, hidden, project.args, project.fs)
