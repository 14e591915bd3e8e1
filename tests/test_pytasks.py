"""`py = "module:function"` tasks through the real bflow: the function runs in a reused worker
process, its output and traceback land in the task's log, and a crash, a timeout or Ctrl-C
kills a worker, never bflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from buildflow import pytasks
from conftest import Project, bflow_env, settle
from test_runner import wait_for

TOOLS = '''
import os, time

def upper(ctx):
    print("upper", ctx.name, ctx.item)
    with open(ctx.output, "w") as out:
        out.write(open(ctx.input).read().upper())
    with open("runs.log", "a") as runs:
        runs.write(ctx.name + "\\n")

def show(ctx):
    with open(ctx.outputs[0], "w") as out:
        out.write(repr((ctx.name, ctx.item, ctx.inputs, ctx.outputs, dict(ctx.vars),
                        ctx.env.get("GREETING"), os.getcwd() == os.path.abspath("."))))
    ctx.log.write("to the log\\n")

def in_cwd(ctx):
    with open(os.path.join(ctx.root, ctx.output), "w") as out:
        out.write(open(os.path.join(ctx.root, ctx.input)).read() + " from " +
                  os.path.relpath(os.getcwd(), ctx.root))

def numbered(ctx):
    for number, path in enumerate(ctx.outputs):
        with open(path, "w") as out:
            out.write(repr((ctx.inputs, number)))

def boom(ctx):
    raise ValueError("the data is bad")

def crash(ctx):
    os._exit(3)

def hang(ctx):
    with open("hang.pid", "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)

def pid(ctx):
    with open("pids.log", "a") as out:
        out.write(f"{os.getpid()}\\n")

def flaky(ctx):
    if not os.path.exists("tried"):
        open("tried", "w").close()
        raise RuntimeError("first time")

not_a_function = 3
'''


def tools(project: Project, flowfile: str) -> None:
    project.write("tools/__init__.py", "")
    project.write("tools/work.py", TOOLS)
    project.flowfile(flowfile)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and \
        Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_a_function_runs_and_is_up_to_date_until_its_module_or_vars_change(project: Project) -> None:
    project.write("a.txt", "a")
    project.write("b.txt", "b")
    tools(project, """
        [vars]
        LEVEL = "1"
        [tasks.up]
        foreach = "*.txt"
        py = "tools.work:upper"
        outputs = ["out/{stem}.up"]
        """)
    assert sorted(project.build()) == ["up:a.txt", "up:b.txt"]
    assert project.read("out/a.up") == "A"
    assert project.build() == []
    project.write("tools/helper.py", "# not imported by the task's module")
    assert project.build() == []
    project.write("tools/work.py", TOOLS + "\n# an edit\n")
    assert sorted(project.build()) == ["up:a.txt", "up:b.txt"]
    assert sorted(project.build("LEVEL=2")) == ["up:a.txt", "up:b.txt"]
    assert "up:a.txt: vars changed" in project.bflow("status").stdout
    assert "upper up:a.txt a.txt" in project.bflow("log", "up:a.txt").stdout


@pytest.mark.output_cache
def test_an_edit_of_a_project_module_the_function_s_module_imports_re_runs_it(
        project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    def write_project(where: Project) -> None:
        where.write("in.txt", "x")
        where.write("tools/__init__.py", "")
        where.write("tools/render.py", "from tools import fmt\n\ndef render(ctx):\n"
                                       "    open('runs.log', 'a').write('render\\n')\n"
                                       "    open(ctx.output, 'w').write(fmt.shout('hi'))\n")
        where.write("tools/fmt.py", "from tools.deep import MARK\n\ndef shout(text):\n"
                                    "    return text.upper() + MARK\n")
        where.write("tools/deep.py", "MARK = '!'\n")
        where.write("tools/unused.py", "MARK = '?'\n")
        where.flowfile("""
            [tasks.render]
            py = "tools.render:render"
            inputs = ["in.txt"]
            outputs = ["out.txt"]
            """)

    write_project(project)
    assert project.build() == ["render"] and project.read("out.txt") == "HI!"
    project.write("tools/unused.py", "MARK = '??'\n")  # imported by nothing
    assert project.build() == []
    project.write("tools/deep.py", "MARK = '!!'\n")  # imported by a module it imports
    assert project.build() == ["render"] and project.read("out.txt") == "HI!!"
    assert project.build() == []
    # The action names the modules by their paths in the project: another checkout of it
    # restores from the output cache.
    clone = Project(tmp_path_factory.mktemp("clone"))
    write_project(clone)
    clone.write("tools/deep.py", "MARK = '!!'\n")
    assert clone.build() == [] and clone.read("out.txt") == "HI!!"


def test_a_module_created_where_the_import_looks_re_runs_the_function(project: Project) -> None:
    # a try-import that found nothing at load, a namespace package made a package, a package
    # made beside a module of its name (which it takes the place of): the caches vouched for
    # the project by the modules it had imported, and ran nothing
    project.write("pkg/sub/mod.py", "")
    project.write("helper.py", "TAG = ''\n")
    project.write("gen.py", "import pkg.sub.mod, helper\ntry:\n    import localcfg\n"
                            "    VAL = localcfg.VAL\nexcept ImportError:\n    VAL = 'default'\n"
                            "def make(ctx):\n    open(ctx.output, 'w').write(\n"
                            "        VAL + getattr(pkg.sub, 'MARK', '') + helper.TAG + '\\n')\n"
                            "    open('runs.log', 'a').write('gen\\n')\n")
    project.flowfile('[tasks.gen]\npy = "gen:make"\noutputs = ["out.txt"]\n')
    for created, text, expected in (("localcfg.py", "VAL = 'custom'", "custom"),
                                    ("pkg/sub/__init__.py", "MARK = '!'", "custom!"),
                                    ("helper/__init__.py", "TAG = '+'", "custom!+")):
        assert project.build() in (["gen"], [])
        settle(project.root, project.root / "pkg" / "sub", project.root / "out.txt")
        assert project.build() == []  # on the fast path, which now holds a proof
        project.write(created, text + "\n")
        assert project.build() == ["gen"]
        assert project.read("out.txt") == expected + "\n"


def test_what_a_module_does_as_it_is_imported_at_load_stays_with_the_import(
        project: Project) -> None:
    # its environment variable reached the commands, and its print the `--json` stream, but
    # only on builds that loaded the Flowfile afresh
    project.write("m.py", "import os\nos.environ.setdefault('BFLOW_TEST_BACKEND', 'Agg')\n"
                          "print('loading m')\n"
                          "def f(ctx):\n    open(ctx.output, 'w').write('p')\n")
    project.flowfile("""
        [tasks.p]
        py = "m:f"
        outputs = ["p.txt"]
        [tasks.d]
        cmd = "echo backend=$BFLOW_TEST_BACKEND > d.txt"
        outputs = ["d.txt"]
        """)
    result = project.bflow("--json")
    assert result.returncode == 0, result.stderr
    assert all(json.loads(line) for line in result.stdout.splitlines())
    assert "loading m" in result.stderr
    assert project.read("d.txt") == "backend=\n"
    assert project.read("p.txt") == "p"


def test_a_function_that_closes_its_stdout_succeeds_and_the_next_prints(
        project: Project) -> None:
    # a TextIOWrapper around sys.stdout.buffer closes it when collected: the worker's flush
    # afterwards raised, and the task failed with bflow's own traceback
    project.write("m.py", "import io, sys\n"
                          "def a(ctx):\n    out = io.TextIOWrapper(sys.stdout.buffer)\n"
                          "    out.write('wrapped\\n'); out.flush(); del out\n"
                          "    open(ctx.output, 'w').write('a')\n"
                          "def b(ctx):\n    print('plain')\n    open(ctx.output, 'w').write('b')\n")
    project.flowfile("""
        [settings]
        jobs = 1
        [tasks.a]
        py = "m:a"
        outputs = ["a.txt"]
        [tasks.b]
        py = "m:b"
        outputs = ["b.txt"]
        deps = ["a"]
        """)
    result = project.bflow("-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.bflow("log", "a").stdout == "wrapped\n"
    assert project.bflow("log", "b").stdout == "plain\n"


def test_a_same_size_edit_within_the_second_runs_the_new_code(project: Project) -> None:
    """Python takes a module's .pyc as current while the source's mtime, in whole seconds, and
    size are as recorded: the workers compile the project's modules from source instead."""
    project.write("in.txt", "x")
    project.write("tools/__init__.py", "")
    project.write("tools/mark.py", "MARK = '!'\n")
    project.write("tools/render.py", "from tools.mark import MARK\n\ndef render(ctx):\n"
                                     "    open('runs.log', 'a').write('render\\n')\n"
                                     "    open(ctx.output, 'w').write(MARK)\n")
    project.flowfile("""
        [tasks.render]
        py = "tools.render:render"
        inputs = ["in.txt"]
        outputs = ["out.txt"]
        """)
    assert project.build() == ["render"] and project.read("out.txt") == "!"
    mark = project.root / "tools/mark.py"
    subprocess.run([sys.executable, "-c", f"import py_compile; py_compile.compile({str(mark)!r})"],
                   check=True)  # a .pyc as any import of it leaves
    before = mark.stat()
    mark.write_text("MARK = '?'\n")  # the same size, and within the same second:
    os.utime(mark, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert project.build() == ["render"] and project.read("out.txt") == "?"


def test_ctx_holds_the_instance_its_paths_vars_and_env(project: Project) -> None:
    project.write("in.txt", "x")
    tools(project, """
        [vars]
        V = "v"
        [tasks.show]
        py = "tools.work:show"
        inputs = ["in.txt"]
        outputs = ["out/deep/show.txt"]
        env = { GREETING = "hi" }
        """)
    project.build()
    assert project.read("out/deep/show.txt") == repr(
        ("show", None, ["in.txt"], ["out/deep/show.txt"], {"V": "v"}, "hi", True))
    assert "to the log" in project.bflow("log", "show").stdout


def test_a_function_run_in_its_cwd_finds_its_paths_from_ctx_root(project: Project) -> None:
    project.write("in.txt", "x")
    project.write("work/.keep", "")
    tools(project, """
        [tasks.show]
        py = "tools.work:in_cwd"
        cwd = "work"
        inputs = ["in.txt"]
        outputs = ["out/show.txt"]
        """)
    assert project.build() == []  # no runs log: counted by its output
    assert project.read("out/show.txt") == "x from work"


@pytest.mark.output_cache
def test_a_renamed_task_runs_its_function_rather_than_restoring_the_old_name_s_output(
        project: Project) -> None:
    # ctx.name was no part of the action: the output cache gave back "made by alpha"
    project.write("gen.py", "def render(ctx):\n    open('runs.log', 'a').write('render\\n')\n"
                            "    open(ctx.output, 'w').write('made by ' + ctx.name)\n")
    project.flowfile('[tasks.alpha]\npy = "gen:render"\noutputs = ["out.txt"]\n')
    assert project.build() == ["render"] and project.read("out.txt") == "made by alpha"
    project.flowfile('[tasks.beta]\npy = "gen:render"\noutputs = ["out.txt"]\n')
    assert project.build() == ["render"] and project.read("out.txt") == "made by beta"
    project.flowfile('[tasks.alpha]\npy = "gen:render"\noutputs = ["out.txt"]\n')
    assert project.build() == [] and project.read("out.txt") == "made by alpha"  # restored


def test_a_new_shell_for_the_commands_leaves_python_tasks_up_to_date(project: Project) -> None:
    # a `py` task runs no shell, but `settings.shell` was a part of its action
    project.write("a.txt", "a")
    tools(project, '[tasks.up]\npy = "tools.work:upper"\ninputs = ["a.txt"]\n'
                   'outputs = ["a.up"]\n[tasks.sh]\ncmd = "echo sh >> runs.log; echo x > {output}"\n'
                   'outputs = ["sh.out"]\n')
    assert sorted(project.build()) == ["sh", "up"]
    project.flowfile('[settings]\nshell = "/bin/bash"\n' + project.read("Flowfile"))
    assert "shell changed" in project.bflow("explain", "sh").stdout
    assert project.bflow("explain", "up").stdout == "up: up to date\n"
    assert project.build() == ["sh"]


@pytest.mark.parametrize("swapped", ["inputs", "outputs"])
def test_a_new_order_of_the_paths_re_runs_the_function_it_is_given_to(project: Project,
                                                                       swapped: str) -> None:
    # ctx.inputs and ctx.outputs keep the order written, so the function may depend on it
    project.write("a.txt", "a")
    project.write("b.txt", "b")
    flowfile = """
        [tasks.numbered]
        py = "tools.work:numbered"
        inputs = [{inputs}]
        outputs = [{outputs}]
        """
    first = {"inputs": '"a.txt", "b.txt"', "outputs": '"x.txt", "y.txt"'}
    tools(project, flowfile.format(**first))
    project.build()
    assert project.read("x.txt") == repr((["a.txt", "b.txt"], 0))
    names = first[swapped].split(", ")
    project.flowfile(flowfile.format(**{**first, swapped: ", ".join(reversed(names))}))
    assert "numbered: order of paths changed" in project.bflow("status").stdout
    project.build()
    if swapped == "inputs":
        assert project.read("x.txt") == repr((["b.txt", "a.txt"], 0))
    else:
        assert project.read("x.txt") == repr((["a.txt", "b.txt"], 1))
    assert project.build() == []


def test_an_exception_fails_the_task_with_its_traceback_in_the_log(project: Project) -> None:
    tools(project, """
        [tasks.boom]
        py = "tools.work:boom"
        """)
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert "FAILED boom" in result.stdout and "ValueError: the data is bad" in result.stdout
    log = project.bflow("log", "boom").stdout
    assert 'tools/work.py", line' in log and "raise ValueError" in log
    assert "pyworker" not in log  # the traceback starts in the user's code


def test_a_crashing_worker_fails_its_task_and_the_pool_goes_on(project: Project) -> None:
    tools(project, """
        [tasks.crash]
        py = "tools.work:crash"
        [tasks.after]
        py = "tools.work:pid"
        deps = ["crash"]
        [tasks.other]
        py = "tools.work:pid"
        """)
    result = project.bflow("-k", "-j1", "--plain")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED crash: exit 3" in result.stdout
    assert "worker running tools.work:crash exited 3" in result.stdout
    assert "ok     other" in result.stdout
    assert "skip   after (dependency failed: crash)" in result.stdout


def test_a_hang_past_the_timeout_kills_the_worker(project: Project) -> None:
    tools(project, """
        [tasks.hang]
        py = "tools.work:hang"
        timeout = 1
        """)
    started = time.monotonic()
    result = project.bflow("--plain")
    assert result.returncode == 1
    assert "timed out after 1s" in result.stdout
    assert time.monotonic() - started < 20
    assert not alive(int(project.read("hang.pid")))


def test_retries_apply_and_json_counts_the_attempts(project: Project) -> None:
    tools(project, """
        [tasks.flaky]
        py = "tools.work:flaky"
        retries = 1
        retry_delay = 0
        """)
    result = project.bflow("--json")
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events if e.get("task") == "flaky"] == \
        ["task_started", "task_retry", "task_finished"]
    assert next(e for e in events if e["event"] == "task_finished")["attempts"] == 2
    assert "RuntimeError: first time" in project.bflow("log", "flaky").stdout


def test_workers_are_reused_at_most_jobs_at_once(project: Project) -> None:
    tools(project, "".join(f"""
        [tasks.t{i}]
        py = "tools.work:pid"
        """ for i in range(8)))
    project.build("-j1")
    assert len(set(project.runs("pids.log"))) == 1
    (project.root / "pids.log").unlink()
    project.build("-j2")
    assert len(project.runs("pids.log")) == 8 and len(set(project.runs("pids.log"))) <= 2


def test_ctrl_c_stops_the_build_and_leaves_no_worker(project: Project) -> None:
    tools(project, """
        [tasks.hang]
        py = "tools.work:hang"
        """)
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    pid_file = project.root / "hang.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert not alive(int(pid_file.read_text()))


def test_sigterm_while_a_module_is_imported_at_load_exits_130(project: Project) -> None:
    # it was taken for the module failing to import: a load error, exit 2
    project.write("slow.py", "import time\nopen('importing', 'w').close()\ntime.sleep(30)\n"
                             "def f(ctx):\n    pass\n")
    project.flowfile('[tasks.a]\npy = "slow:f"\n')
    process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"], cwd=project.root,
                               env=bflow_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 30
    while not (project.root / "importing").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (130, "", "bflow: interrupted\n")


def test_py_references_that_cannot_work_are_load_errors(project: Project) -> None:
    tools(project, """
        [tasks.nomodule]
        py = "tools.missing:run"
        [tasks.nofunction]
        py = "tools.work:uper"
        [tasks.notcallable]
        py = "tools.work:not_a_function"
        """)
    result = project.bflow("validate")
    assert result.returncode == 2
    err = result.stderr
    assert "Flowfile: tasks.nomodule.py: cannot import 'tools.missing': ModuleNotFoundError" in err
    assert "tasks.nofunction.py: module 'tools.work' has no function 'uper' (did you mean " \
           "'upper'?)" in err
    assert "tasks.notcallable.py: 'tools.work:not_a_function' is no function but an int" in err
    assert project.bflow().returncode == 2


def test_py_beside_cmd_or_not_a_reference_is_a_load_error(project: Project) -> None:
    tools(project, """
        [tasks.both]
        py = "tools.work:pid"
        cmd = "true"
        [tasks.badform]
        py = "tools/work.py"
        [tasks.attached]
        py = "tools.work:pid"
        interactive = true
        """)
    result = project.bflow("validate")
    assert result.returncode == 2
    assert "Flowfile: tasks.both.py: a task has either py or cmd" in result.stderr
    assert "Flowfile: tasks.badform.py: expected \"module:function\"" in result.stderr
    assert "Flowfile: tasks.attached.interactive: a py task runs in a worker" in result.stderr


class ImportsAsItIsAsked(types.ModuleType):
    """A module whose `__file__`, when asked, adds another to `sys.modules`: as a thread that
    imports while the load looks through them (a build starting Python workers while it
    expands a task that waited for a directory output)."""

    @property
    def __file__(self) -> None:  # type: ignore[override]
        sys.modules[f"_bflow_busy_{len(sys.modules)}"] = types.ModuleType("other")
        return None


def test_the_load_s_import_of_a_reference_beside_a_thread_that_imports(tmp_path: Path) -> None:
    # "dictionary changed size during iteration", reported as the user's module failing
    (tmp_path / "m.py").write_text("def f(ctx):\n    pass\n")
    sys.modules["_bflow_busy"] = ImportsAsItIsAsked("_bflow_busy")
    try:
        function, problem, _, _ = pytasks.find("m:f", str(tmp_path))
        assert callable(function), problem
    finally:
        for name in [name for name in sys.modules if name.startswith("_bflow_busy")]:
            del sys.modules[name]


def test_a_module_another_task_writes_is_read_as_an_input_once_written(project: Project) -> None:
    # hashed into the action at load, before `gen` rewrote it: the function ran on the old
    # module's value once, or ran twice for each change
    project.write("m.py", "import genmod\ndef f(ctx):\n    open('runs.log', 'a').write('use\\n')\n"
                          "    open(ctx.output, 'w').write(genmod.VAL + '\\n')\n")
    project.write("src.txt", "one\n")
    project.write("genmod.py", "VAL = 'left by a checkout'\n")
    flow = """
        [tasks.gen]
        cmd = "echo gen >> runs.log; echo \\"VAL = '$(cat src.txt)'\\" > {output}"
        inputs = ["src.txt"]
        outputs = ["genmod.py"]
        [tasks.use]
        py = "m:f"
        outputs = ["use.txt"]
        """
    project.flowfile(flow + 'deps = ["gen"]\n')
    result = project.bflow()
    assert result.returncode == 2
    assert ("tasks.use.py: its function imports 'genmod.py', which task 'gen' writes: list it "
            "in `inputs`, so that it is read once that task has run") in result.stderr
    project.flowfile(flow + 'inputs = ["genmod.py"]\n')
    assert project.build() == ["gen", "use"] and project.read("use.txt") == "one\n"
    assert project.build() == []
    project.write("src.txt", "two\n")
    assert project.build() == ["gen", "use"] and project.read("use.txt") == "two\n"
    assert project.build() == []


def test_a_module_inside_a_directory_output_is_one_its_writer_writes(project: Project) -> None:
    """A module in a directory output (`tools/` holding `tools/gen.py`) was hashed at load
    as a source, and `bflow clean` deleted it with the tree, also when the directory was the
    function's own task's output."""
    project.write("tools/gen.py", "def render(ctx):\n    open('tools/out.txt', 'w').write('x')\n")
    project.flowfile('[tasks.gen]\npy = "tools.gen:render"\noutputs = ["tools/"]\n')
    result = project.bflow("validate")
    assert result.returncode == 2
    assert ("tasks.gen.py: its function's module 'tools/gen.py' is inside the task's own "
            "directory output, which `bflow clean` deletes whole; keep the module out of it"
            ) in result.stderr
    project.flowfile('[tasks.gen]\ncmd = "mkdir -p tools; touch tools/x"\noutputs = ["tools/"]\n'
                     '[tasks.use]\npy = "tools.gen:render"\noutputs = ["use.txt"]\n')
    result = project.bflow("validate")
    assert result.returncode == 2
    assert "tasks.use.py: its function imports 'tools/gen.py', which task 'gen' writes" \
        in result.stderr
    assert project.read("tools/gen.py").startswith("def render")


def test_a_worker_reads_again_a_module_an_earlier_task_imported_before_its_writer_ran(
        project: Project) -> None:
    """One worker ran `early`, which imports `genmod` as it runs, then `use`, which lists
    `genmod.py` in its inputs, after `gen` rewrote it: the worker's copy of the module was the
    one `early` imported, so `use` wrote the old value and was recorded up to date."""
    project.write("early.py", "def f(ctx):\n    import genmod\n"
                              "    open(ctx.output, 'w').write(str(genmod.X))\n")
    project.write("use.py", "def f(ctx):\n    import genmod\n"
                            "    open(ctx.output, 'w').write(str(genmod.X))\n")
    project.write("genmod.py", "X = 0\n")
    project.write("ver.txt", "1\n")
    project.flowfile("""
        [tasks.early]
        py = "early:f"
        outputs = ["o_early"]
        [tasks.gen]
        cmd = "echo X = $(cat ver.txt) > genmod.py"
        inputs = ["ver.txt"]
        outputs = ["genmod.py"]
        [tasks.use]
        py = "use:f"
        inputs = ["genmod.py"]
        outputs = ["o_use"]
        """)
    project.bflow("-j1", "--plain").check_returncode()
    assert project.read("o_early") == "0" and project.read("o_use") == "1"
    project.write("ver.txt", "2\n")
    project.bflow("-j1", "--plain", "-B").check_returncode()
    assert project.read("o_use") == "2"


def test_a_function_whose_body_a_call_does_not_run_fails(project: Project) -> None:
    """An `async def` or a generator function returned without running its body, and the
    task was recorded up to date."""
    project.write("m.py", "async def check(ctx):\n    open('runs.log', 'a').write('check\\n')\n"
                          "def gen(ctx):\n    open('runs.log', 'a').write('gen\\n')\n"
                          "    yield\n")
    project.flowfile("""
        [tasks.check]
        py = "m:check"
        [tasks.gen]
        py = "m:gen"
        """)
    result = project.bflow("--plain", "-k")
    assert result.returncode == 1
    for name, kind in (("check", "coroutine"), ("gen", "generator")):
        assert f"FAILED {name}:" in result.stdout
        assert f"m:{name} returned a {kind} without running its body" in result.stdout
    assert not (project.root / "runs.log").exists()
    assert "RuntimeWarning" not in result.stdout + result.stderr


def test_an_edit_of_a_module_the_project_links_to_re_runs_the_function(
        project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`helper.py -> ../shared/helper.py` is a module under the root, as the README says a
    module of the project is; its edits were never part of the function's action."""
    shared = tmp_path_factory.mktemp("shared")
    (shared / "helper.py").write_text("V = '1'\n")
    (shared / "lib").mkdir()
    (shared / "lib" / "deep.py").write_text("W = 'a'\n")
    (project.root / "helper.py").symlink_to(shared / "helper.py")
    (project.root / "lib").symlink_to(shared / "lib")
    project.write("m.py", "import helper\nfrom lib import deep\ndef f(ctx):\n"
                          "    open('runs.log', 'a').write('a\\n')\n"
                          "    open(ctx.output, 'w').write(helper.V + deep.W)\n")
    project.flowfile("""
        [tasks.a]
        py = "m:f"
        outputs = ["out.txt"]
        """)
    assert project.build() == ["a"] and project.read("out.txt") == "1a"
    assert project.build() == []
    (shared / "helper.py").write_text("V = '2'\n")
    assert project.build() == ["a"] and project.read("out.txt") == "2a"
    (shared / "lib" / "deep.py").write_text("W = 'b'\n")
    assert project.build() == ["a"] and project.read("out.txt") == "2b"
    assert project.build() == []


def test_a_thread_a_function_leaves_running_ends_with_its_worker(project: Project) -> None:
    """A function that starts a thread (not a daemon) kept its worker alive after bflow
    exited, an orphan, for as long as the thread ran."""
    project.write("m.py", "import os, threading, time\ndef f(ctx):\n"
                          "    open('worker.pid', 'w').write(str(os.getpid()))\n"
                          "    threading.Thread(target=time.sleep, args=(60,)).start()\n")
    project.flowfile("""
        [tasks.a]
        py = "m:f"
        """)
    project.bflow("-q").check_returncode()
    pid = int(project.read("worker.pid"))
    assert wait_for(lambda: not alive(pid), timeout=10)
