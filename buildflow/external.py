"""Values a Flowfile takes from outside itself when it is loaded: `{env.NAME}` and
`{env.NAME:-text}` from bflow's environment, and computed vars (`X = { sh = "command" }`) from a
command's output.

Both are filled in before the other placeholders are expanded, so they reach the expanded
commands, env and paths like any var and are part of the action of exactly the tasks that use
them (SPEC §2 rule 1 sees them there, with no rule of its own). No file holds them, so a
project that uses them is `volatile`: the caches that vouch for a project by its Flowfile's
bytes (the project cache, the no-op proof) leave it alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping

from buildflow.flowfile import Flowfile, TaskDecl
from buildflow.locate import shown
from buildflow.secrets import is_secret_key

_ENV = re.compile(r"\{\{|\}\}|\{env\.([A-Za-z_][A-Za-z0-9_]*)(?::-([^{}]*))?\}")


class _EnvFiller:
    """Replaces `{env.NAME}` groups, noting each unset name without a default as a problem."""

    def __init__(self, environ: Mapping[str, str], keep: Collection[str]) -> None:
        """`keep`: names `settings.env` sets, whose value a command gets from there."""
        self.environ = environ
        self.keep = keep
        self.problems: list[tuple[str, str]] = []  # (where, what is wrong there)
        self.used = False
        self.secrets: dict[str, str] = {}  # secret-looking names filled since `task` began

    def fill(self, text: str, where: str) -> str:
        if "{env." not in text:
            return text

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name is None:  # `{{` or `}}`: left for the later expansion
                return match.group(0)
            self.used = True
            value = self.environ.get(name)
            if default is not None and not value:  # `:-` as in the shell: unset or empty
                value = default
            elif value and is_secret_key(name):
                self.secrets[name] = value
            if value is None:
                self.problems.append((where, f"environment variable '{name}' is not set "
                                     f"({{env.{name}}}); set it, or give a default: "
                                     f"{{env.{name}:-text}}"))
                return ""
            # Braces doubled: the value is text, never a placeholder of the later expansion.
            return value.replace("{", "{{").replace("}", "}}")

        return _ENV.sub(substitute, text)

    def fill_all(self, texts: tuple[str, ...], where: str) -> tuple[str, ...]:
        return tuple(self.fill(text, f"{where}[{i}]") for i, text in enumerate(texts))

    def fill_table(self, table: tuple[tuple[str, str], ...],
                   where: str) -> tuple[tuple[str, str], ...]:
        return tuple((key, self.fill(value, f"{where}.{key}")) for key, value in table)

    def task(self, decl: TaskDecl) -> TaskDecl:
        """The declaration with its `{env.NAME}`s filled; the same object when it has none
        (most have none, and a copy of each was a large load's memory for nothing)."""
        texts = (*(decl.cmd or ()), *decl.inputs, *decl.outputs, *decl.foreach,
                 decl.depfile or "", decl.cwd or "", *(value for _, value in decl.env))
        if not any("{env." in text for text in texts):
            return decl
        where = f"tasks.{decl.name}"
        self.secrets = {}
        filled = decl._replace(
            cmd=None if decl.cmd is None else (self.fill(decl.cmd[0], f"{where}.cmd"),)
            if len(decl.cmd) == 1 else self.fill_all(decl.cmd, f"{where}.cmd"),
            inputs=self.fill_all(decl.inputs, f"{where}.inputs"),
            outputs=self.fill_all(decl.outputs, f"{where}.outputs"),
            foreach=self.fill_all(decl.foreach, f"{where}.foreach"),
            depfile=decl.depfile and self.fill(decl.depfile, f"{where}.depfile"),
            cwd=decl.cwd and self.fill(decl.cwd, f"{where}.cwd"),
            env=self.fill_table(decl.env, f"{where}.env"))
        # A secret taken from bflow's environment is one of the task's env keys, with the
        # value its command inherits anyway: so it is masked wherever bflow prints.
        named = {key for key, _ in decl.env} | set(self.keep)
        taken = tuple((name, value.replace("{", "{{").replace("}", "}}"))
                      for name, value in self.secrets.items() if name not in named)
        return filled._replace(env=(*filled.env, *taken)) if taken else filled


def fill_environment(flowfile: Flowfile, environ: Mapping[str, str]
                     ) -> tuple[Flowfile, list[tuple[str, str]], bool]:
    """The Flowfile with every `{env.NAME}` replaced by its value in `environ`, the problems
    (unset names without a default) as (where, what), and whether it used any."""
    filler = _EnvFiller(environ, [key for key, _ in flowfile.settings.env])
    settings = flowfile.settings._replace(
        env=filler.fill_table(flowfile.settings.env, "settings.env"))
    tasks = tuple(filler.task(decl) for decl in flowfile.tasks)
    return flowfile._replace(settings=settings, tasks=tasks), filler.problems, filler.used


def compute_vars(flowfile: Flowfile, skip: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values of the computed vars not in `skip` (overridden on the command line): each
    command's stdout without its trailing newlines, as the shell's `$(...)` takes it, run in
    the project root with bflow's environment and no stdin; and the problems (a command that
    fails or prints what no command line can hold). Each runs in a process group of its own,
    killed whole when bflow is stopped (SIGTERM reaches bflow alone, not the `sleep` a
    command started)."""
    if not any(name not in skip for name, _ in flowfile.computed):
        return {}, []
    from buildflow.signals import run_alone

    file, root = shown(flowfile.path), flowfile.root
    values: dict[str, str] = {}
    problems: list[str] = []
    for name, command in flowfile.computed:
        if name in skip:
            continue
        where = f"{file}: vars.{name}"
        try:
            status, stdout, stderr = run_alone([flowfile.settings.shell, "-c", command], root,
                                               capture=True)
        except OSError as exc:
            problems.append(f"{where}: cannot run {flowfile.settings.shell}: {exc.strerror}")
            continue
        if status != 0:
            said = stderr.decode("utf-8", "replace").strip().splitlines()
            problems.append(f"{where}: the command `{command}` failed (exit {status})"
                            + (f": {said[-1]}" if said else "")
                            + f"; fix it, or give the value on the command line ({name}=...)")
            continue
        try:
            value = stdout.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            value = "\0"
        if "\0" in value:
            problems.append(f"{where}: the command `{command}` printed a NUL byte or text that "
                            "is not UTF-8, which no command line can hold")
            continue
        values[name] = value
    return values, problems
