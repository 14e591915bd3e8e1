"""Flowfile declarations -> a Project: foreach instances, placeholders, globs, links, checks.

Everything that can be wrong with a Flowfile is found here, before anything runs, and reported
together as one FlowfileError.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Mapping
from pathlib import Path

from buildflow import globbing, placeholders
from buildflow.errors import FlowfileError, did_you_mean
from buildflow.flowfile import Flowfile, TaskDecl
from buildflow.graph import Graph
from buildflow.model import Project, Task


def normalize(path: str) -> str:
    """A POSIX path relative to the root ('..' kept when it leaves it; absolute stays so)."""
    normal = posixpath.normpath(path.replace(os.sep, "/"))
    return "" if normal == "." else normal


def is_outside(path: str) -> bool:
    return path.startswith("/") or path == ".." or path.startswith("../")


def item_values(item: str, pattern: str) -> dict[str, str]:
    """The foreach placeholders for one matched path."""
    directory, name = posixpath.split(item)
    stem, ext = posixpath.splitext(name)
    prefix = globbing.fixed_prefix(pattern)
    rel = item[len(prefix) + 1:] if prefix and item.startswith(prefix + "/") else item
    return {"item": item, "dir": directory, "name": name, "stem": stem, "ext": ext,
            "rel": rel, "relstem": posixpath.splitext(rel)[0]}


class _Resolver:
    def __init__(self, flowfile: Flowfile, overrides: Mapping[str, str]) -> None:
        self.flowfile = flowfile
        self.file = flowfile.path.name
        self.root = flowfile.path.parent
        self.vars = {**dict(flowfile.vars), **overrides}
        self.cache_dir = normalize(flowfile.settings.cache_dir)
        self.disk = globbing.DiskIndex(str(self.root), skip=[self.cache_dir])
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.declared: dict[str, str] = {}  # output -> instance name
        self.real_root = os.path.realpath(self.root)
        self.real_parents: dict[str, str | None] = {}  # output dir -> its real path if outside

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.file}: {where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {where}: {message}")

    def check_placeholders(self, decl: TaskDecl, known: list[str]) -> None:
        fields: list[tuple[str, str]] = [(f"cmd[{i}]", c) for i, c in enumerate(decl.cmd or ())]
        fields += [(f"inputs[{i}]", v) for i, v in enumerate(decl.inputs)]
        fields += [(f"outputs[{i}]", v) for i, v in enumerate(decl.outputs)]
        fields += [("depfile", decl.depfile or ""), ("cwd", decl.cwd or "")]
        fields += [(f"env.{k}", v) for k, v in decl.env]
        for key, text in fields:
            for message in placeholders.misspelt(text, known):
                self.warn(f"tasks.{decl.name}.{key}", message)

    def foreach_items(self, decl: TaskDecl) -> list[tuple[str, str]]:
        """(item, the glob that matched it), sorted by path."""
        matched: dict[str, str] = {}
        for pattern in decl.foreach:
            expanded = normalize(placeholders.expand(pattern.removeprefix("!"), self.vars))
            if pattern.startswith("!"):
                regex = globbing.compile_glob(expanded)
                matched = {p: g for p, g in matched.items() if not regex.match(p)}
                continue
            for path in globbing.match(expanded, self.disk, self.declared):
                matched.setdefault(path, expanded)
        if not matched:
            self.warn(f"tasks.{decl.name}.foreach", "matches no file, so the task has no "
                                                     "instances")
        return sorted(matched.items())

    def declare(self, decl: TaskDecl, name: str, values: dict[str, str]) -> tuple[list[str], set[str]]:
        outputs: list[str] = []
        dirs: set[str] = set()
        for index, raw in enumerate(decl.outputs):
            where = f"tasks.{decl.name}.outputs[{index}]"
            expanded = placeholders.expand(raw, values)
            path = normalize(expanded)
            if is_outside(path) or not path:
                self.problem(where, f"output '{expanded}' is outside the project root "
                                    f"{self.root}; write outputs inside it")
                continue
            if path == self.cache_dir or path.startswith(self.cache_dir + "/"):
                self.problem(where, f"output '{expanded}' is inside the cache dir "
                                    f"'{self.cache_dir}'")
                continue
            escape = self._escaping_parent(path)
            if escape:
                self.problem(where, f"output '{expanded}' goes through a symlink that leaves the "
                                    f"project root (to {escape}); write outputs inside it")
                continue
            if path in self.declared:
                self.problem(where, f"output '{path}' is also declared by task "
                                    f"'{self.declared[path]}'; each file has one producer")
                continue
            if expanded.endswith("/"):
                dirs.add(path)
            self.declared[path] = name
            outputs.append(path)
        return outputs, dirs

    def _escaping_parent(self, path: str) -> str | None:
        """The real directory outside the root that `path`'s parent resolves to, if any."""
        parent = posixpath.dirname(path)
        if parent not in self.real_parents:
            real = os.path.realpath(self.root / parent)
            inside = real == self.real_root or real.startswith(self.real_root + os.sep)
            self.real_parents[parent] = None if inside else real
        return self.real_parents[parent]

    def expand_inputs(self, decl: TaskDecl, name: str, patterns: list[str],
                      values: dict[str, str]) -> list[str]:
        chosen: dict[str, None] = {}
        for index, raw in enumerate(patterns):
            offset = index - (len(patterns) - len(decl.inputs))
            where = f"tasks.{decl.name}.inputs[{offset}]" if offset >= 0 \
                else f"tasks.{decl.name}.foreach"
            exclude = raw.startswith("!")
            expanded = normalize(placeholders.expand(raw.removeprefix("!"), values))
            if exclude:
                regex = globbing.compile_glob(expanded)
                chosen = {p: None for p in chosen if not regex.match(p)}
            elif globbing.is_glob(expanded):
                matches = globbing.match(expanded, self.disk, self.declared)
                if not matches:
                    self.warn(where, f"'{expanded}' matches no file")
                chosen.update(dict.fromkeys(matches))
            elif expanded in self.declared or self._inside_dir_output(expanded):
                chosen[expanded] = None
            elif not expanded:
                self.problem(where, "an empty input path")
            elif os.path.isdir(self.root / expanded):
                self.problem(where, f"'{expanded}' is a directory; to depend on its files "
                                    f"write '{expanded}/**'")
            elif os.path.islink(self.root / expanded) and not os.path.exists(self.root / expanded):
                self.problem(where, f"input '{expanded}' is a symlink to "
                                    f"'{os.readlink(self.root / expanded)}', which does not exist")
            elif os.path.lexists(self.root / expanded):
                chosen[expanded] = None
            else:
                hint = did_you_mean(expanded, self.declared)
                self.problem(where, f"input '{expanded}' of task '{name}' is neither on disk "
                                    f"nor an output of any task{hint}")
        return list(chosen)

    def _inside_dir_output(self, path: str) -> bool:
        parent = posixpath.dirname(path)
        while parent not in ("", "/"):
            if parent in self.declared and parent != path:
                return True
            parent = posixpath.dirname(parent)
        return False


def _command_values(values: dict[str, str], paths: dict[str, list[str]], cwd: str) -> dict[str, str]:
    """Placeholder values for `cmd`: paths quoted and relative to the command's directory."""

    def rebase(path: str) -> str:
        if not cwd or path.startswith("/"):
            return path or "."
        return os.path.relpath(path or ".", cwd).replace(os.sep, "/")

    out = dict(values)
    for key, items in paths.items():
        out[key] = " ".join(shlex.quote(rebase(p)) for p in items)
    for key in ("item", "dir"):
        if key in values:
            out[key] = shlex.quote(rebase(values[key]))
    for key in placeholders.ITEM_PIECE_NAMES:
        if key in values:
            out[key] = shlex.quote(values[key])
    return out


def resolve(flowfile: Flowfile, overrides: Mapping[str, str] | None = None) -> Project:
    """Expand and check every task; raise FlowfileError listing every problem found."""
    r = _Resolver(flowfile, overrides or {})
    settings = flowfile.settings
    staged: list[tuple[TaskDecl, str, dict[str, str], list[str], set[str], list[str]]] = []
    base_names = [decl.name for decl in flowfile.tasks]
    for decl in flowfile.tasks:
        items: list[tuple[str | None, str]] = [(None, "")]
        if decl.foreach:
            items = list(r.foreach_items(decl))  # type: ignore[arg-type]
        known = [*r.vars, *placeholders.BUILTIN_NAMES]
        r.check_placeholders(decl, known)
        for item, pattern in items:
            name = decl.name if item is None else f"{decl.name}:{item}"
            values = dict(r.vars, task=name)
            inputs = list(decl.inputs)
            if item is not None:
                values.update(item_values(item, pattern))
                inputs.insert(0, "{item}")
            outputs, dirs = r.declare(decl, name, values)
            staged.append((decl, name, values, outputs, dirs, inputs))

    tasks: dict[str, Task] = {}
    instances: dict[str, list[str]] = {}
    for decl, name, _, _, _, _ in staged:
        instances.setdefault(decl.name, []).append(name)
    settings_env = [(k, placeholders.expand(v, r.vars)) for k, v in settings.env]
    for decl, name, values, outputs, dirs, raw_inputs in staged:
        inputs = r.expand_inputs(decl, name, raw_inputs, values)
        values = dict(values, output=outputs[0] if outputs else "",
                      input=inputs[0] if inputs else "")
        depfile = None
        if decl.depfile:
            depfile = normalize(placeholders.expand(decl.depfile, values))
            if is_outside(depfile):
                r.problem(f"tasks.{decl.name}.depfile", f"'{depfile}' is outside the project root")
            values["depfile"] = depfile
        cwd = normalize(placeholders.expand(decl.cwd, values)) if decl.cwd else ""
        deps: list[str] = []
        for index, dep in enumerate(decl.deps):
            if dep in instances:
                deps.extend(instances[dep])
            elif dep in base_names:
                continue  # a foreach task with no instances
            elif dep.partition(":")[0] in instances and dep in instances[dep.partition(":")[0]]:
                deps.append(dep)
            else:
                hint = did_you_mean(dep, base_names)
                r.problem(f"tasks.{decl.name}.deps[{index}]", f"unknown task '{dep}'{hint}")
        paths = {"inputs": inputs, "outputs": outputs, "input": inputs[:1],
                 "output": outputs[:1], "depfile": [depfile] if depfile else []}
        command_values = _command_values(values, paths, cwd)
        env_values = dict(values, inputs=" ".join(inputs), outputs=" ".join(outputs))
        commands = tuple(placeholders.expand(c, command_values) for c in decl.cmd or ())
        env = tuple(settings_env) + tuple(
            (k, placeholders.expand(v, env_values)) for k, v in decl.env)
        tasks[name] = Task(
            name=name, base=decl.name, commands=commands, inputs=tuple(inputs),
            outputs=tuple(outputs), dir_outputs=frozenset(dirs), deps=tuple(deps),
            depfile=depfile, env=env, cwd=cwd, shell=settings.shell,
            retries=settings.retries if decl.retries is None else decl.retries,
            retry_delay=settings.retry_delay if decl.retry_delay is None else decl.retry_delay,
            timeout=settings.timeout if decl.timeout is None else decl.timeout,
            always=decl.always, description=decl.description,
            item=values.get("item"),
        )
    for index, name in enumerate(settings.default or ()):
        if name not in instances and name not in tasks:
            hint = did_you_mean(name, base_names)
            r.problem(f"settings.default[{index}]", f"unknown task '{name}'{hint}")
    graph = Graph(tasks)
    if not r.problems:
        cycle = graph.find_cycle()
        if cycle:
            r.problem("tasks", "dependency cycle: " + " -> ".join(cycle))
    if r.problems:
        raise FlowfileError(r.problems)
    return Project(root=r.root, flowfile=flowfile.path, settings=settings, vars=r.vars,
                   tasks=tasks, graph=graph, warnings=tuple(r.warnings),
                   globbed_dirs=frozenset(r.disk.dirs_read))


def load(path: str | os.PathLike[str] = "Flowfile", overrides: Mapping[str, str] | None = None) -> Project:
    """Load and check a Flowfile: the Python API's entry point."""
    from buildflow.flowfile import load as load_flowfile

    return resolve(load_flowfile(Path(path).resolve()), overrides)
