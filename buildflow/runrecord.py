"""What a finished run read and wrote, as the record the next build's decision reads: the
hashes of its outputs, the input hashes its decision took (UNKNOWN for a file edited while
the command ran), and the files its depfile names as the command read them. The builder asks
under its lock: `at_start` as a task starts, `record` once its commands exited 0."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

from buildflow import depfile as depfiles
from buildflow.attempts import Execution
from buildflow.fs import NO_SUCH_PATH
from buildflow.hashing import MISSING, UNKNOWN, Hasher
from buildflow.model import Task
from buildflow.staleness import Decision
from buildflow.state import State, TaskRecord

# How far in the future a depfile input's mtime may be before bflow warns of the clock.
TIMESTAMP_SLACK_NS = 50_000_000

Stat = tuple[int, int, int]  # a file's size, mtime and inode: what shows it was written
Stats = list[tuple[str, Stat]]
# Of a task as it starts: the stats at which its input files were hashed, and those of the
# files its last depfile named
AtStart = tuple[Stats, dict[str, Stat]]


class RunRecorder:
    """The records of the runs of one build, on its hasher and state."""

    def __init__(self, root: str, hasher: Hasher, state: State,
                 warn: Callable[[str], None]) -> None:
        self.root = root
        self.hasher = hasher
        self.state = state
        self.warn = warn
        self._depfile_names: depfiles.RootNames | None = None

    def record(self, task: Task, decision: Decision, done: Execution, at_start: AtStart,
               duration: float) -> tuple[TaskRecord | None, str]:
        """The record of a run that exited 0, or None and why it failed all the same (an
        output missing, or of the other kind than declared). BuildError when an output or a
        depfile input cannot be read (a FIFO): that fails this task only."""
        input_stats, depfile_stats = at_start
        record = None
        outputs = {path: self.hasher.written_hash(path) for path in task.outputs}
        missing = [path for path, digest in outputs.items() if digest == MISSING]
        trees = self._directories_for_files(task, outputs)
        files = self._files_for_directories(task, outputs)
        if not missing and not trees and not files:
            record = TaskRecord(decision.action,
                                self._inputs_read(decision.input_hashes, input_stats),
                                self._depfile_inputs(task, done, depfile_stats), outputs,
                                duration)
        reason = (f"exited 0 but did not write declared output {missing[0]}"
                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                  if missing else
                  f"left a directory at {trees[0]}, which it declares as a file; declare "
                  f"a directory output as '{trees[0]}/'" if trees else
                  f"found a file at {files[0]}, which it declares as a directory output "
                  f"'{files[0]}/' (move the file away, or declare it as '{files[0]}')"
                  if files else "")
        return record, reason

    def _directories_for_files(self, task: Task, outputs: Mapping[str, str]) -> list[str]:
        """The outputs declared as files (no `/`) that are directories: not the task's file
        (perhaps the user's), which `bflow clean` must never take for one. A file the hasher
        read is in its cache, so only the others cost a stat."""
        fs, cache = self.hasher.fs, self.hasher.cache
        return [path for path, digest in outputs.items()
                if digest != MISSING and path not in cache and path not in task.dir_outputs
                and (st := fs.stat(path)) is not None and st.is_dir
                and fs.link_target(path) is None]

    def _files_for_directories(self, task: Task, outputs: Mapping[str, str]) -> list[str]:
        """The directory outputs (`site/`) where a file stands: not the task's tree (perhaps
        the user's file, which the command left alone), which `bflow clean` must never take
        for one."""
        stat = self.hasher.fs.stat
        return [path for path in task.dir_outputs if outputs.get(path, MISSING) != MISSING
                and (st := stat(path)) is not None and not st.is_dir]

    def at_start(self, task: Task) -> AtStart:
        """What `_inputs_read` and `_depfile_inputs` compare with once the task has run, taken
        as it starts: the stats its inputs were hashed at, and the stats now of what its last
        depfile named: for a file hashed since the last command ran (by the decision), the
        stat it was hashed at, as for inputs; any other is statted here."""
        cache, stat, seen = self.hasher.cache, self.hasher.fs.stat, self.hasher.seen_stat
        inputs = [(path, cache[path][:3]) for path in task.inputs if path in cache]
        record = self.state.tasks.get(task.name) if task.depfile else None
        named: dict[str, Stat] = {}
        for path in record.depfile_inputs if record is not None else ():
            now = seen(path)
            if now is None and (st := stat(path)) is not None:
                now = (st.size, st.mtime_ns, st.inode)
            if now is not None:
                named[path] = now
        return inputs, named

    def _inputs_read(self, hashes: dict[str, str], stats: Stats) -> dict[str, str]:
        """The input hashes the decision took before the run, with UNKNOWN for each file
        whose stat has changed since (edited while the command ran, even if changed back
        before it ended, so the command may have read another content): the task runs again
        on the next build, and the output cache stores nothing of this run."""
        stat = self.hasher.fs.stat
        changed = [path for path, before in stats
                   if (st := stat(path)) is None or (st.size, st.mtime_ns, st.inode) != before]
        return {**hashes, **dict.fromkeys(changed, UNKNOWN)} if changed else hashes

    def _root_names(self) -> depfiles.RootNames:
        """How depfiles' paths are named, made when the first depfile is read."""
        if self._depfile_names is None:
            self._depfile_names = depfiles.RootNames(self.root,
                                                     self.hasher.fs.real_path)
        return self._depfile_names

    def _depfile_inputs(self, task: Task, done: Execution,
                        at_start: dict[str, Stat]) -> dict[str, str]:
        """Hashes of the files the depfile names. One whose stat is what it was when the task
        started (`at_start`, for what its last depfile named), or when it was hashed before
        the start (an output of an earlier task, a source hashed earlier), holds the content
        the command read, as git re-hashes a racy file rather than take it as changed. One
        written at or after the start may have changed during the run: UNKNOWN, so the task
        runs again."""
        if not task.depfile:
            return {}
        try:
            text = self.hasher.fs.read(task.depfile).decode("utf-8", "surrogateescape")
        except (FileNotFoundError, IsADirectoryError):
            return {}
        except OSError as exc:  # a depfile that cannot be there (a name too long) names nothing
            if exc.errno not in NO_SUCH_PATH:
                raise
            return {}
        found: dict[str, str] = {}
        declared = set(task.inputs) | set(task.outputs)
        trees = tuple(f"{path}/" for path in task.dir_outputs)  # its own files, written now
        names = self._root_names()
        for raw in depfiles.parse(text):
            named = names.name(raw if raw.startswith("/") else posixpath.join(task.cwd, raw))
            for path in (named, *names.through_links(raw, task.cwd, named)):
                if path in declared or path in found or path.startswith(trees):
                    continue
                found[path] = self._depfile_input_hash(task, path, done, at_start)
        return found

    def _depfile_input_hash(self, task: Task, path: str, done: Execution,
                            at_start: dict[str, Stat]) -> str:
        """The hash of depfile input `path` as the command read it, or UNKNOWN (see
        `_depfile_inputs`)."""
        st = self.hasher.fs.stat(path)  # the one stat after the run, hashed by if need be
        if path in at_start:
            if st is not None and (st.size, st.mtime_ns, st.inode) == at_start[path]:
                return self.hasher.statted_hash(path, st)
            return UNKNOWN  # changed since the start (an atomic save of an older file too)
        before = self.hasher.hashed_before(path, done.started_ns, st)
        if before is not None:
            return before
        if st is None:
            return self.hasher.file_hash(path)
        # the ctime too: a file renamed onto the path, or dated back, keeps an old mtime
        if max(st.mtime_ns, st.ctime_ns) < done.started_file_ns:
            return self.hasher.statted_hash(path, st)
        ahead = st.mtime_ns - self.hasher.fs.now_ns()
        if ahead > TIMESTAMP_SLACK_NS:
            self.warn(
                f"{path}: modified {ahead / 1e9:.0f}s in the future (a depfile input of task "
                f"'{task.name}'), so bflow cannot tell whether it changed while the task ran "
                f"and '{task.name}' runs on every build until then; check the clock, or "
                f"`touch {path}`")
        return UNKNOWN
