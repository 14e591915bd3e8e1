"""Projects written in Python: `buildflow.Project`, `@project.task`, `project.add` and
`project.main()`, run as `python build.py ...` on the same state and rules as a Flowfile."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from buildflow.errors import EXIT_OK
from conftest import Project, bflow_env
from test_watch import Watching

BUILD = '''
import buildflow
from names import NAMES

project = buildflow.Project(vars={"MARK": "!"})


@project.task(inputs="in.txt", outputs="out/up.txt")
def upper(ctx):
    """Upper-case the input."""
    with open(ctx.output, "w") as out:
        out.write(open(ctx.input).read().upper() + ctx.vars["MARK"])
    with open("runs.log", "a") as runs:
        runs.write(ctx.name + "\\n")


for name in NAMES:
    project.add(f"copy-{name}", cmd="cp {input} {output} && echo {task} >> runs.log",
                inputs="out/up.txt", outputs=f"out/{name}.txt")

project.add("all", deps=[f"copy-{name}" for name in NAMES])
'''
MAIN = '''
if __name__ == "__main__":
    project.main()
'''


def script(project: Project, names: list[str], main: str = MAIN, body: str = BUILD) -> None:
    project.write("names.py", f"NAMES = {names!r}\n")
    project.write("build.py", body + main)


def run(project: Project, *args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "build.py", *args], cwd=project.root,
                            env=bflow_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == status, result.stdout + result.stderr
    return result


def built(project: Project, *args: str) -> list[str]:
    before = len(project.runs())
    run(project, *args)
    return project.runs()[before:]


def test_a_script_builds_and_is_up_to_date_on_the_same_rules(project: Project) -> None:
    project.write("in.txt", "hi")
    script(project, ["a", "b"])
    assert sorted(built(project)) == ["copy-a", "copy-b", "upper"]
    assert project.read("out/b.txt") == "HI!"
    assert built(project) == []
    assert run(project, "list").stdout.split()[:4] == ["upper", "Upper-case", "the", "input."]
    assert "all 3 tasks are up to date" in run(project, "status", "--check").stdout
    assert "copy-a" in run(project, "graph").stdout
    project.write("in.txt", "ho")
    run(project, "status", "--check", status=1)
    assert built(project, "copy-a") == ["upper", "copy-a"]
    assert sorted(built(project, "MARK=?")) == ["copy-a", "copy-b", "upper"]


def test_a_change_to_a_module_the_script_imports_is_never_served_stale(project: Project) -> None:
    project.write("in.txt", "hi")
    script(project, ["a"])
    assert built(project) == ["upper", "copy-a"]
    assert built(project) == []
    project.write("names.py", "NAMES = ['a', 'c']\n")  # build.py's bytes are the same
    # A module the script imports is part of its functions' action, as the function may
    # use it; `upper` makes the same output, so copy-a stays up to date.
    assert sorted(built(project)) == ["copy-c", "upper"]
    assert built(project) == []
    project.write("build.py", BUILD + "\n# an edit of the functions' module\n" + MAIN)
    assert built(project) == ["upper"]  # its outputs are the same: the copies stay up to date


def test_a_script_without_a_main_guard_does_not_build_in_its_workers(project: Project) -> None:
    project.write("in.txt", "hi")
    script(project, ["a"], main="\nproject.main()\n")
    assert built(project) == ["upper", "copy-a"]


def test_watch_rebuilds_a_script_project(project: Project) -> None:
    project.write("in.txt", "hi")
    script(project, ["a"])
    watching = Watching(project, command=(sys.executable, "build.py"))
    try:
        watching.wait_idle(1)
        assert project.runs() == ["upper", "copy-a"]
        project.write("in.txt", "changed")
        watching.wait_idle(2)
        assert project.runs()[2:] == ["upper", "copy-a"]
        assert project.read("out/a.txt") == "CHANGED!"
        project.write("names.py", "NAMES = ['a', 'b']\n")  # a module the script imports
        watching.wait_for(lambda: "run it again" in watching.out.read_text()
                          + watching.err.read_text(), "the edit reported")
        assert len(project.runs()) == 4  # the running script's declarations are the old ones
    finally:
        status = watching.interrupt()
    assert status == EXIT_OK


def validated(project: Project, script: str, name: str = "build.py", cwd: str = "."
              ) -> subprocess.CompletedProcess[str]:
    """`python SCRIPT` for a script that declares, then runs `validate`; run in `cwd` (from
    the root), with the script's path from there."""
    path = project.write(name, textwrap.dedent(script) + "project.main(['validate'])\n")
    return subprocess.run([sys.executable, os.path.relpath(path, project.root / cwd)],
                          cwd=project.root / cwd, env=bflow_env(), capture_output=True,
                          text=True, timeout=60)


def test_a_nested_function_cannot_be_a_task(project: Project) -> None:
    result = validated(project, '''
        import buildflow
        project = buildflow.Project()
        def make():
            @project.task(outputs="x")
            def inner(ctx):
                pass
        make()
        ''')
    assert result.returncode == 2, result.stderr
    assert result.stderr == "bflow: error: build.py: make.<locals>.inner: a task's function " \
        "must be defined at the top level of its module, where a worker can import it\n"


@pytest.mark.parametrize("mistake", ["two functions of one name", "a task declared twice",
                                     "a name given as the decorator's argument",
                                     "a key that is no string"])
def test_mistakes_in_declarations_are_load_errors_naming_the_script(project: Project,
                                                                    mistake: str) -> None:
    # each was a Python traceback as the script declared (exit 1, a task's failure), or an
    # internal error (exit 3); two functions of one name ran the second as the first
    declarations = {
        "two functions of one name": '''
            @project.task(name="a", outputs="a.txt")
            def gen(ctx):
                open(ctx.output, "w").write("from A")
            @project.task(name="b", outputs="b.txt")
            def gen(ctx):
                open(ctx.output, "w").write("from B")
            ''',
        "a task declared twice": '''
            project.add("t", cmd="echo 1")
            project.add("t", cmd="echo 2")
            ''',
        "a name given as the decorator's argument": '''
            @project.task("gen")
            def gen(ctx):
                pass
            ''',
        "a key that is no string": '''
            project.add("t", cmd="echo 1", env={1: "x"})
            '''}
    said = {"two functions of one name": "tasks.b: two functions are declared as tasks by "
                                         "the name 'build:gen'",
            "a task declared twice": "tasks.t: declared twice; give each task its own name",
            "a name given as the decorator's argument": "@project.task('gen'): the decorator "
                                                        "takes keywords only",
            "a key that is no string": "tasks.t.env: a key must be a string, got an integer (1)"}
    result = validated(project, "import buildflow\nproject = buildflow.Project()\n"
                       + textwrap.dedent(declarations[mistake]))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"bflow: error: build.py: {said[mistake]}"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_mistake_in_declaring_is_said_with_the_rest(project: Project) -> None:
    """A task declared twice hid every other load error (an unknown key, a platform no
    Python names), shown one fix at a time."""
    result = validated(project, """
        import buildflow
        project = buildflow.Project()
        project.add("a", cmd="true", ouputs="x")
        project.add("a", cmd="true")
        """)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bflow: error: build.py: tasks.a: declared twice; give each task its own name",
        "bflow: error: build.py: tasks.a.ouputs: unknown key (did you mean 'outputs'?)"]


@pytest.mark.parametrize("name, said", [
    ("build-site.py", "'build-site', which is no name Python can import; name the script "
                      "like a module (e.g. build_site.py)"),
    ("build.local.py", "'build.local', which is no name Python can import; name the script "
                       "like a module (e.g. build_local.py)"),
    ("site.py", "'site', and Python has one of that name already"),
])
def test_a_script_a_worker_would_import_as_another_module_says_so(
        project: Project, name: str, said: str) -> None:
    """A worker imports a script by its name as a module: `build-site.py` is none,
    `build.local.py` is `local` of a package `build`, and `site.py` the `site` every Python
    has imported (those two passed the load, then every task failed)."""
    result = validated(project, '''
        import buildflow
        project = buildflow.Project()
        @project.task(outputs="x")
        def make(ctx):
            pass
        ''', name=name)
    assert result.returncode == 2
    assert f"{name}: a worker imports a build script's task functions as the module {said}" \
        in result.stderr


def test_a_task_function_from_a_module_outside_the_root_says_so(project: Project) -> None:
    """`from helpers import copy` beside a script whose Project is a subdirectory: the script
    finds `helpers`, a worker (the root first on its path) does not; every build failed."""
    project.write("helpers.py", "def copy(ctx):\n    pass\n")
    project.write("proj/a.txt", "a\n")
    project.write("build.py", textwrap.dedent('''
        import buildflow
        from helpers import copy
        project = buildflow.Project("proj")
        project.task(inputs="a.txt", outputs="b.txt")(copy)
        project.main(["validate"])
        '''))
    result = subprocess.run([sys.executable, "build.py"], cwd=project.root, env=bflow_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"helpers.copy: its module is not in the project root {project.root / 'proj'}, " \
        "nor installed, so a worker cannot import it; move " \
        f"{project.root / 'helpers.py'} into the root" in result.stderr


def test_errors_in_a_script_project_name_the_script(project: Project) -> None:
    project.write("build.py", textwrap.dedent('''
        import buildflow
        project = buildflow.Project()
        project.add("bad", cmd="true", ouputs=["x"])
        project.main(["validate"])
        '''))
    result = subprocess.run([sys.executable, "build.py"], cwd=project.root, env=bflow_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "build.py: tasks.bad.ouputs: unknown key (did you mean 'outputs'?)" in result.stderr


@pytest.mark.parametrize("cwd, said", [(".", "tools/build.py"), ("tools", "build.py")])
def test_errors_name_a_script_in_a_subdirectory_by_its_path_from_the_working_directory(
        project: Project, cwd: str, said: str) -> None:
    """A script in `tools/` declaring the project above it was named `build.py` from the
    root and `../build.py` from `tools/`, the root joined to its name: no such file."""
    result = validated(project, """
        import buildflow
        project = buildflow.Project("..")
        project.add("bad", cmd="true", ouputs="x")
        project.add("bad", cmd="true")
        """, name="tools/build.py", cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"bflow: error: {said}: tasks.bad: declared twice; give each task its own name",
        f"bflow: error: {said}: tasks.bad.ouputs: unknown key (did you mean 'outputs'?)"]


def test_an_output_that_is_the_script_in_a_subdirectory_is_refused(project: Project) -> None:
    """The check that no output is the Flowfile took the script for `build.py` in the root:
    it refused that output, and let a build overwrite `tools/build.py` itself."""
    result = validated(project, """
        import buildflow
        project = buildflow.Project("..")
        project.add("mine", cmd="true", outputs="build.py")
        project.add("self", cmd="true", outputs="tools/build.py")
        """, name="tools/build.py")
    assert result.returncode == 2
    assert result.stderr == "bflow: error: tools/build.py: tasks.self.outputs[0]: output " \
        "'tools/build.py' is the build script declaring this project: it runs before " \
        "anything else does, and `bflow clean` would delete it\n"


def test_a_script_in_a_subdirectory_builds_a_foreach_over_a_directory_output(
        project: Project) -> None:
    """The instances of a foreach over a directory output are found once its producer has
    run, by a resolver that took the script's directory for the root: it found none, and
    the build said it was done."""
    project.write("tools/build.py", textwrap.dedent("""
        import buildflow
        project = buildflow.Project("..")
        project.add("gen", cmd="mkdir -p site && echo a > site/a.txt && echo b > site/b.txt"
                               " && echo gen >> runs.log", outputs="site/")
        project.add("copy", foreach="site/*.txt", outputs="out/{stem}.txt",
                    cmd="cp {item} {output} && echo {task} >> runs.log")
        project.main()
        """))
    for _ in range(2):
        result = subprocess.run([sys.executable, "tools/build.py"], cwd=project.root,
                                env=bflow_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(project.runs()) == ["copy:site/a.txt", "copy:site/b.txt", "gen"]
    assert project.read("out/b.txt") == "b\n"


def test_a_script_in_a_subdirectory_keeps_its_caches_in_the_root_s_cache_dir(
        project: Project) -> None:
    """The caches looked for the cache dir beside the script (`tools/.bflow`), where the
    project, rooted above, never keeps it: every build of `python tools/build.py` loaded
    the script's project in full and left no proof."""
    project.write("in.txt", "a\n")
    project.write("tools/build.py", textwrap.dedent("""
        import buildflow
        project = buildflow.Project("..")
        project.add("copy", cmd="cp {input} {output} && echo copy >> runs.log",
                    inputs="in.txt", outputs="out.txt")
        project.main()
        """))

    def build() -> list[str]:
        before = len(project.runs())
        result = subprocess.run([sys.executable, "tools/build.py"], cwd=project.root,
                                env=bflow_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return project.runs()[before:]

    assert build() == ["copy"]
    assert build() == []
    assert (project.root / ".bflow" / "flowcache").exists()
    assert (project.root / ".bflow" / "uptodate").exists()
    project.write("in.txt", "b\n")
    assert build() == ["copy"]
    assert project.read("out.txt") == "b\n"
    assert build() == []


def test_the_root_is_relative_to_the_script(project: Project, tmp_path: Path) -> None:
    project.write("in.txt", "hi")
    script(project, ["a"])
    elsewhere = subprocess.run([sys.executable, str(project.root / "build.py"), "--plain"],
                               cwd=tmp_path.parent, env=bflow_env(), capture_output=True,
                               text=True, timeout=60)
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert project.read("out/a.txt") == "HI!"


def test_a_script_without_the_main_guard_naming_its_own_functions_builds(
        project: Project) -> None:
    # the load imported the script, whose main() loaded it again, and so on: with two such
    # tasks, for ever
    project.write("build.py", textwrap.dedent('''
        import buildflow
        project = buildflow.Project()
        def gen(ctx):
            open(ctx.output, "w").write("g")
        def gen2(ctx):
            open(ctx.output, "w").write("g2")
        project.add("gen", py="build:gen", outputs="g.txt")
        project.add("gen2", py="build:gen2", outputs="g2.txt")
        project.main()
        '''))
    result = subprocess.run([sys.executable, "build.py"], cwd=project.root, env=bflow_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert project.read("g.txt") == "g" and project.read("g2.txt") == "g2"


def test_main_without_a_script_file_says_so(project: Project) -> None:
    # python -c: a traceback (FileNotFoundError for '-c'), exit 1
    result = subprocess.run([sys.executable, "-c", "import buildflow\n"
                             "project = buildflow.Project()\n"
                             "project.add('t', cmd='true')\nproject.main()\n"],
                            cwd=project.root, env=bflow_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("bflow: error: project.main() runs the project of the "
                                    "script it is in"), result.stderr
