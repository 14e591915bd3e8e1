"""Flowfile declarations -> a Project: foreach instances, placeholders, globs, links, checks.

Everything that can be wrong with a Flowfile is found here, before anything runs, and reported
together as one FlowfileError.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Mapping

from buildflow import foreach, globbing, placeholders, rootcheck
from buildflow.errors import FlowfileError, UsageError, did_you_mean
from buildflow.flowfile import Flowfile, TaskDecl
from buildflow.graph import Graph
from buildflow.model import Project, Task
from buildflow.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any


class _Staged(NamedTuple):
    """One instance between declaring its outputs and expanding its inputs."""

    decl: TaskDecl
    name: str
    values: dict[str, str]
    outputs: list[str]
    dirs: set[str]
    inputs: list[str]


class _Resolver:
    def __init__(self, flowfile: Flowfile, overrides: Mapping[str, str],
                 hidden: frozenset[str]) -> None:
        self.file = os.path.basename(flowfile.path)
        self.root = os.path.dirname(flowfile.path)
        self.vars = {**dict(flowfile.vars), **overrides}
        self.cache_dir = globbing.normalize(flowfile.settings.cache_dir)
        self.disk = globbing.DiskIndex(self.root, skip=[self.cache_dir], hidden=hidden)
        self.hidden = hidden
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.declared: dict[str, str] = {}  # output -> instance name
        self.where: dict[str, str] = {}  # output -> the key that declared it
        self.dirs: dict[str, str] = {}  # directory output -> instance name
        self.own: dict[str, set[str]] = {}  # task -> the outputs of all its instances
        self.real_root = os.path.realpath(self.root)
        self.real_parents: dict[str, str | None] = {}  # output dir -> its real path if outside
        self.used_names: dict[tuple[str, ...], frozenset[str]] = {}  # templates -> their names

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.file}: {where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {where}: {message}")

    def check_placeholders(self, decl: TaskDecl) -> None:
        """Refuse `{NAME}` groups that are surely a misspelt var or placeholder (`{ouput}`
        would reach the command as written); warn about looser near-misses and about foreach
        placeholders outside foreach."""
        fields: list[tuple[str, str]] = [(f"cmd[{i}]", c) for i, c in enumerate(decl.cmd or ())]
        for key in ("inputs", "outputs", "foreach"):
            fields += [(f"{key}[{i}]", v) for i, v in enumerate(getattr(decl, key))]
        fields += [("depfile", decl.depfile or ""), ("cwd", decl.cwd or "")]
        fields += [(f"env.{k}", v) for k, v in decl.env]
        items = placeholders.ITEM_NAMES
        known = [*self.vars, *(n for n in placeholders.BUILTIN_NAMES
                               if decl.foreach or n not in items)]
        lowered = {name.lower(): name for name in known}
        for key, text in fields:
            for name in placeholders.unknown(text, known):
                if name in items:
                    self.warn(f"tasks.{decl.name}.{key}", f"'{{{name}}}' is a placeholder only "
                                                          "under foreach; it is left as written")
                    continue
                typo = placeholders.misspelt(name, known)
                if typo:
                    self.problem(f"tasks.{decl.name}.{key}",
                                 f"'{{{name}}}' is neither a var nor a placeholder (did you "
                                 f"mean '{typo}'?); for literal braces write '{{{{{name}}}}}'")
                    continue
                hint = f" (did you mean '{lowered[name.lower()]}'?)" \
                    if name.lower() in lowered else did_you_mean(name, known)
                if hint:
                    self.warn(f"tasks.{decl.name}.{key}",
                              f"'{{{name}}}' is not a placeholder, so it is left as written{hint}")

    def declare(self, decl: TaskDecl, name: str, values: dict[str, str]) -> tuple[list[str], set[str]]:
        outputs: list[str] = []
        dirs: set[str] = set()
        for index, raw in enumerate(decl.outputs):
            where = f"tasks.{decl.name}.outputs[{index}]"
            expanded = placeholders.expand(raw, values)
            path = globbing.normalize(expanded)
            if globbing.is_outside(path) or not path:
                self.problem(where, f"output '{expanded}' is outside the project root "
                                    f"{self.root}; write outputs inside it")
            elif path == self.cache_dir or path.startswith(self.cache_dir + "/"):
                self.problem(where, f"output '{expanded}' is inside the cache dir "
                                    f"'{self.cache_dir}'")
            elif escape := self._escaping_parent(path):
                self.problem(where, f"output '{expanded}' goes through a symlink that leaves the "
                                    f"project root (to {escape}); write outputs inside it")
            elif path in self.declared:
                self.problem(where, f"output '{path}' of task '{name}' is also declared by task "
                                    f"'{self.declared[path]}' ({self.where[path]}); each file "
                                    "has one producer")
            else:
                if expanded.endswith("/"):
                    dirs.add(path)
                    self.dirs[path] = name
                self.declared[path] = name
                self.where[path] = where
                self.own.setdefault(decl.name, set()).add(path)
                outputs.append(path)
        return outputs, dirs

    def _escaping_parent(self, path: str) -> str | None:
        """The real directory outside the root that `path`'s parent resolves to, if any."""
        parent = posixpath.dirname(path)
        if parent not in self.real_parents:
            self.real_parents[parent] = rootcheck.escape_of(self.real_root, self.root, parent)
        return self.real_parents[parent]

    def check_dir_overlaps(self) -> None:
        """A file output inside another task's directory output would have two producers."""
        for path, name in self.declared.items():
            owner = self.dir_producer(posixpath.dirname(path))
            if owner is not None and owner != name:
                self.problem(self.where[path], f"output '{path}' of task '{name}' is inside a "
                                               f"directory output of task '{owner}'")

    def dir_producer(self, path: str) -> str | None:
        """The instance whose directory output is `path` or holds it."""
        if not self.dirs:  # no task declares a directory output: the usual project
            return None
        while path not in ("", "/"):
            if path in self.dirs:
                return self.dirs[path]
            path = posixpath.dirname(path)
        return None

    def expand_inputs(self, staged: _Staged) -> tuple[list[str], list[str]]:
        """The input files in the order written (each glob's matches sorted, each file once),
        and the instances producing directories those inputs read from."""
        decl, name = staged.decl, staged.name
        own = self.own.get(decl.name, set())
        chosen: dict[str, None] = {}
        producers: dict[str, None] = {}
        for index, raw in enumerate(staged.inputs):
            offset = index - (len(staged.inputs) - len(decl.inputs))
            where = f"tasks.{decl.name}." + (f"inputs[{offset}]" if offset >= 0 else "foreach")
            expanded = globbing.normalize(placeholders.expand(raw.removeprefix("!"),
                                                              staged.values))
            if raw.startswith("!"):
                regex = globbing.compile_glob(expanded)
                chosen = {p: None for p in chosen if not regex.match(p)}
                continue
            producer = self.dir_producer(globbing.fixed_prefix(expanded)
                                         if globbing.is_glob(expanded) else expanded)
            if producer is not None and producer != name:
                producers[producer] = None
            if expanded in self.dirs:  # a directory output stands for the files in it
                expanded += "/**"
            if globbing.is_glob(expanded):
                matches = globbing.match(expanded, self.disk, self.declared, exclude=own)
                if not matches and producer is None:
                    self.warn(where, f"'{expanded}' matches no file")
                chosen.update(dict.fromkeys(matches))
            elif not expanded:
                self.problem(where, "an empty input path")
            elif expanded in self.declared or producer is not None:
                chosen[expanded] = None
            else:
                problem = self.file_problem(expanded, name)
                if problem:
                    self.problem(where, problem)
                else:
                    chosen[expanded] = None
        return list(chosen), list(producers)

    def file_problem(self, path: str, name: str) -> str:
        """What is wrong with input `path` of task `name` on disk ("" when it is a file): one
        lstat for the usual case, since every foreach instance has one such input."""
        full = os.path.join(self.root, path)
        try:
            if path in self.hidden:
                raise FileNotFoundError(path)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                mode = os.stat(full).st_mode
        except OSError:
            if os.path.islink(full):
                return f"input '{path}' is a symlink to '{os.readlink(full)}', which does not exist"
            hint = did_you_mean(path, self.declared)
            return f"input '{path}' of task '{name}' is neither on disk nor an output of any " \
                   f"task{hint}"
        if stat.S_ISDIR(mode):
            return f"'{path}' is a directory; to depend on its files write '{path}/**'"
        return ""

    def deps_of(self, decl: TaskDecl, instances: Mapping[str, list[str]]) -> list[str]:
        """Instance names for `deps` (a foreach task stands for all its instances)."""
        deps: list[str] = []
        for index, dep in enumerate(decl.deps):
            base = dep.partition(":")[0]
            if dep in instances:
                deps.extend(instances[dep])
            elif base in instances and dep in instances[base]:
                deps.append(dep)
            else:
                names = [*instances, *(n for group in instances.values() for n in group)]
                self.problem(f"tasks.{decl.name}.deps[{index}]",
                             f"unknown task '{dep}'{did_you_mean(dep, names)}")
        return deps

    def names_in(self, templates: tuple[str, ...]) -> frozenset[str]:
        """The placeholder names `templates` use, found once for all instances of a task."""
        names = self.used_names.get(templates)
        if names is None:
            names = self.used_names[templates] = placeholders.names_in(templates)
        return names

    def task(self, staged: _Staged, instances: Mapping[str, list[str]], flowfile: Flowfile) -> Task:
        decl, name, values, outputs = staged.decl, staged.name, staged.values, staged.outputs
        settings = flowfile.settings
        inputs, producers = self.expand_inputs(staged)
        values = dict(values, output=outputs[0] if outputs else "",
                      input=inputs[0] if inputs else "")
        depfile = None
        if decl.depfile:
            depfile = globbing.normalize(placeholders.expand(decl.depfile, values))
            if globbing.is_outside(depfile) or not depfile:
                self.problem(f"tasks.{decl.name}.depfile",
                             f"'{depfile}' is outside the project root")
            values["depfile"] = depfile
        cwd = globbing.normalize(placeholders.expand(decl.cwd, values)) if decl.cwd else ""
        paths = {"inputs": inputs, "outputs": outputs, "input": inputs[:1],
                 "output": outputs[:1], "depfile": [depfile] if depfile else []}
        root = self.root
        in_cmd = placeholders.command_values(values, paths, root, cwd, quote=True,
                                             wanted=self.names_in(decl.cmd or ()))
        env = (*settings.env, *decl.env)
        in_env = placeholders.command_values(
            values, paths, root, cwd, quote=False,
            wanted=self.names_in(tuple(v for _, v in env))) if env else {}
        deps = [*self.deps_of(decl, instances), *producers]
        return Task(
            name=name, base=decl.name,
            commands=tuple(placeholders.expand(c, in_cmd) for c in decl.cmd or ()),
            inputs=tuple(inputs), outputs=tuple(outputs), dir_outputs=frozenset(staged.dirs),
            deps=tuple(dict.fromkeys(deps)), depfile=depfile,
            env=tuple((k, placeholders.expand(v, in_env)) for k, v in env),
            cwd=cwd, shell=settings.shell,
            retries=settings.retries if decl.retries is None else decl.retries,
            retry_delay=settings.retry_delay if decl.retry_delay is None else decl.retry_delay,
            timeout=settings.timeout if decl.timeout is None else decl.timeout,
            always=decl.always, description=decl.description, item=values.get("item"),
            cache=decl.cache,
        )

    def check_cycle(self, graph: Graph) -> None:
        """Report a cycle as `a -> b -> a` (a needs b), saying what makes each link."""
        cycle = graph.find_cycle()
        if not cycle:
            return
        reasons = []
        for needs, needed in zip(cycle, cycle[1:]):
            task = graph.tasks[needs]
            read = [p for p in task.inputs if graph.producer_of(p) == needed]
            reasons.append(f"{needs} reads '{read[0]}', an output of {needed}" if read
                           else f"{needs} lists {needed} in deps")
        first = graph.tasks[cycle[0]]
        key = "deps" if cycle[1] in first.deps else "inputs"
        self.problem(f"tasks.{first.base}.{key}",
                     "dependency cycle: " + " -> ".join(cycle) + " (" + "; ".join(reasons) + ")")


def _check_overrides(flowfile: Flowfile, overrides: Mapping[str, str]) -> None:
    """An override of a var the Flowfile does not declare is a typo (`GREETNG=x`) that would
    otherwise change nothing, silently."""
    declared = dict(flowfile.vars)
    for name, value in overrides.items():
        if name not in declared:
            hint = did_you_mean(name, declared) or \
                (f" (its vars: {', '.join(declared)})" if declared else "")
            raise UsageError(f"{name}={value}: {os.path.basename(flowfile.path)} declares no "
                             f"var '{name}'{hint}; declare it under [vars] to override it")


def resolve(flowfile: Flowfile, overrides: Mapping[str, str] | None = None,
            hidden: frozenset[str] = frozenset()) -> Project:
    """Expand and check every task; raise FlowfileError listing every problem found. `hidden`
    files on disk are taken as gone."""
    _check_overrides(flowfile, overrides or {})
    r = _Resolver(flowfile, overrides or {}, hidden)
    items = foreach.find_items(flowfile.tasks, r.vars, r.disk)
    staged: list[_Staged] = []
    for decl in flowfile.tasks:
        r.check_placeholders(decl)
        entries: list[foreach.Item | None] = [None]
        if decl.foreach:
            entries = list(items[decl.name])
            if not entries:
                r.warn(f"tasks.{decl.name}.foreach", "matches no file, so the task has no "
                                                     "instances")
        for item in entries:
            values = foreach.instance_values(r.vars, decl, item)
            outputs, dirs = r.declare(decl, values["task"], values)
            inputs = ["{item}", *decl.inputs] if item else list(decl.inputs)
            staged.append(_Staged(decl, values["task"], values, outputs, dirs, inputs))
    r.check_dir_overlaps()
    instances: dict[str, list[str]] = {decl.name: [] for decl in flowfile.tasks}
    for entry in staged:
        instances[entry.decl.name].append(entry.name)
    tasks = {entry.name: r.task(entry, instances, flowfile) for entry in staged}
    graph = Graph(tasks)
    for index, target in enumerate(flowfile.settings.default or ()):
        if target in instances:
            continue
        try:
            graph.select([target], r.root)
        except UsageError as exc:
            r.problem(f"settings.default[{index}]", str(exc))
    if not r.problems:
        r.check_cycle(graph)
    if r.problems:
        raise FlowfileError(r.problems)
    return Project(root=r.root, flowfile=flowfile.path, settings=flowfile.settings,
                   vars=r.vars, tasks=tasks, graph=graph, warnings=tuple(r.warnings),
                   globbed_dirs=frozenset(r.disk.dirs_read))


def load(path: str | os.PathLike[str] = "Flowfile",
         overrides: Mapping[str, str] | None = None,
         hidden: frozenset[str] = frozenset()) -> Project:
    """Load and check a Flowfile: the Python API's entry point."""
    from buildflow.flowfile import load as load_flowfile

    return resolve(load_flowfile(os.path.realpath(path)), overrides, hidden)


def from_dict(data: Mapping[str, Any], root: str | os.PathLike[str] = ".",
              overrides: Mapping[str, str] | None = None,
              hidden: frozenset[str] = frozenset()) -> Project:
    """A project from Python objects shaped like a Flowfile's TOML (`{"tasks": {...}}`),
    rooted at `root`; checked exactly as a Flowfile is (errors name it `<python>`)."""
    from buildflow.flowfile import parse

    project = resolve(parse(os.path.join(os.path.realpath(root), "<python>"), data), overrides,
                      hidden)
    return project._replace(data=data)


def reload(project: Project, hidden: frozenset[str] = frozenset()) -> Project:
    """Load the project again from where it came from, with the same vars; `hidden` files
    are taken as gone (`engine.as_built`)."""
    if project.data is not None:
        return from_dict(project.data, project.root, project.vars, hidden)
    return load(project.flowfile, project.vars, hidden)
