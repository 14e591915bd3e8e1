"""The loading commands from the command line: validate, list, init, --version, --help, -f, -C,
discovery and exit codes."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildflow import __version__
from buildflow import arguments, cli
from buildflow.arguments import parse_args
from buildflow.commands import COMMANDS
from buildflow.fastpath import cmdline
from conftest import REPO, Project, bflow_env, run_bflow, waiting_in

GOOD = """
[vars]
WORD = "hello"
[tasks.src]
description = "Write the word"
cmd = "echo {WORD} >> runs.log && echo {WORD} > {output}"
outputs = ["out/word.txt"]
[tasks.cc]
foreach = "*.c"
cmd = "true"
[tasks.all]
deps = ["src"]
"""

BROKEN = '[tasks.a]\ncmd = "x"\nouputs = ["a"\n'


def test_validate_ok(project: Project) -> None:
    project.flowfile(GOOD)
    project.write("a.c", "")
    result = project.bflow("validate")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Flowfile: ok, 3 tasks\n", "")


def test_validate_warnings_exit_zero(project: Project) -> None:
    project.flowfile(GOOD.replace("echo {WORD} >", "echo {WD} >"))
    result = project.bflow("validate")
    assert result.returncode == 0
    assert result.stdout == "Flowfile: ok, 2 tasks, 2 warnings\n"
    assert "bflow: warning: Flowfile: tasks.src.cmd: '{WD}' is not a placeholder, so it " \
           "is left as written (did you mean 'WORD'?)" in result.stderr
    assert "tasks.cc.foreach: matches no file" in result.stderr


@pytest.mark.parametrize("text, message", [
    (BROKEN, "bflow: error: Flowfile:3:14: TOML syntax error: Unclosed array at the end of "
             "the file"),
    ('[tasks.a]\ncmd = "x"\nouputs = ["a"]\n',
     "bflow: error: Flowfile: tasks.a.ouputs: unknown key (did you mean 'outputs'?)"),
    ('[tasks.a]\ncmd = 3\n',
     "bflow: error: Flowfile: tasks.a.cmd: expected a string or a list of strings, got an "
     "integer (3)"),
    ('[tasks.a]\ncmd = "x"\ndeps = ["b"]\n[tasks.bb]\ncmd = "y"\n',
     "bflow: error: Flowfile: tasks.a.deps[0]: unknown task 'b' (did you mean 'bb'?)"),
    ('[tasks.a]\ncmd = "x"\ninputs = ["a.out"]\noutputs = ["a.out"]\n',
     "bflow: error: Flowfile: tasks.a.inputs: dependency cycle: a -> a (a reads 'a.out', an "
     "output of a)"),
    ('[tasks.a]\ncmd = "x"\noutputs = ["o"]\n[tasks.b]\ncmd = "x"\noutputs = ["o"]\n',
     "bflow: error: Flowfile: tasks.b.outputs[0]: output 'o' of task 'b' is also declared by "
     "task 'a'"),
    ('[tasks.a]\ncmd = "x"\noutputs = ["../o"]\n',
     "bflow: error: Flowfile: tasks.a.outputs[0]: output '../o' is outside the project root"),
    ('[tasks.a]\ncmd = "x"\ninputs = ["nothing.txt"]\n',
     "bflow: error: Flowfile: tasks.a.inputs[0]: input 'nothing.txt' of task 'a' is neither "
     "on disk nor an output of any task"),
])
def test_errors_exit_2_with_the_place_and_no_traceback(project: Project, text: str,
                                                       message: str) -> None:
    project.write("Flowfile", text)
    project.write("side.c", "")
    for command in ("validate", "list", "build"):
        result = project.bflow(command)
        assert result.returncode == 2, command
        assert result.stderr.startswith(message), (command, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (project.root / "runs.log").exists()


@pytest.mark.parametrize("setting", ["", 'cache_dir = "data.txt"'])
def test_a_file_where_the_cache_dir_goes_is_a_load_error_for_every_command(
        project: Project, setting: str) -> None:
    # each command failed on its own terms: exit 1 for the lock, "delete it to start over",
    # an internal error (exit 3) for log and report, and validate passed
    project.flowfile(f'[settings]\n{setting}\n[tasks.a]\ncmd = "echo a >> runs.log"\n')
    path = "data.txt" if setting else ".bflow"
    project.write(path, "the user's\n")
    for command in ([], ["validate"], ["status"], ["log", "a"], ["report"], ["clean"]):
        result = project.bflow(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == (f"bflow: error: Flowfile: settings.cache_dir: '{path}' is a "
                                 "file, and bflow keeps its records, logs and lock in a "
                                 "directory there: move the file away, or set "
                                 "settings.cache_dir to another path\n")
    assert project.read(path) == "the user's\n" and project.runs() == []


def test_errors_name_the_flowfile_as_the_user_would_type_it(project: Project) -> None:
    # they named it `Flowfile` whatever its directory: a CI job checking several projects
    # could not tell which one was broken
    project.write("services/api/Flowfile", '[tasks.a]\ncmdd = "true"\n')
    named = project.bflow("-f", "services/api/Flowfile", "validate")
    assert (named.returncode, named.stderr) == (
        2, "bflow: error: services/api/Flowfile: tasks.a.cmdd: unknown key (did you mean "
           "'cmd'?)\n")
    project.write("Flowfile", '[tasks.a]\ncmd = "true\n')
    project.write("src/a.c", "")
    below = run_bflow("validate", cwd=project.root / "src")
    assert below.returncode == 2 and below.stderr.startswith("bflow: error: ../Flowfile:2:")
    # what the Flowfile is called in messages is not its path from the root
    project.write("Flowfile", '[tasks.a]\ncmd = "true"\noutputs = ["Flowfile"]\n'
                              '[tasks.b]\ncmd = "true"\noutputs = ["b"]\ndepfile = "Flowfile"\n')
    both = run_bflow("validate", cwd=project.root / "src")
    assert both.returncode == 2
    assert "../Flowfile: tasks.a.outputs[0]: output 'Flowfile' is this Flowfile" in both.stderr
    assert "../Flowfile: tasks.b.depfile: depfile 'Flowfile' of task 'b' is this Flowfile" \
        in both.stderr


def test_counts_read_in_the_singular_for_one(project: Project) -> None:
    project.flowfile('[tasks.one]\ncmd = "echo 1 > {output}"\noutputs = ["one.txt"]\n')
    assert project.bflow("validate").stdout == "Flowfile: ok, 1 task\n"
    assert project.bflow().returncode == 0
    assert project.bflow("status").stdout == "bflow: 1 task is up to date\n"
    assert project.bflow("clean").stdout == "bflow: removed 1 output of 1 task\n"


def test_list_shows_descriptions_and_instances(project: Project) -> None:
    project.flowfile(GOOD)
    project.write("a.c", "")
    project.write("b.c", "")
    result = project.bflow("list")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["src  Write the word", "cc   [2 instances]", "all"]
    (project.root / "b.c").unlink()
    assert project.bflow("list").stdout.splitlines()[1] == "cc   [1 instance]"


def test_list_with_patterns_shows_matching_tasks_and_instances(project: Project) -> None:
    project.flowfile(GOOD.replace('[tasks.cc]', '[tasks.cc]\ndescription = "compile"'))
    for name in ("a.c", "b.c", "sub/c.c"):
        project.write(name, "")
    assert project.bflow("list", "cc:*").stdout.splitlines() == [
        "cc:a.c  compile", "cc:b.c  compile"]  # foreach = "*.c" matches no sub/c.c
    assert project.bflow("list", "c*", "src").stdout.splitlines() == [
        "src     Write the word", "cc      compile [2 instances]", "cc:a.c  compile",
        "cc:b.c  compile"]
    wrong = project.bflow("list", "cc:x*")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("bflow: error: no task or instance matches 'cc:x*'")


def test_init_writes_a_starter_that_validates_and_builds(project: Project) -> None:
    result = project.bflow("init")
    assert result.returncode == 0
    text = project.read("Flowfile")
    assert text.count("\n#") >= 3
    assert project.bflow("validate").stdout == "Flowfile: ok, 3 tasks\n"
    assert project.bflow("build", "--plain").returncode == 0
    assert project.read("build/shout.txt") == "HELLO\n"


def test_init_writes_the_file_named_by_f_and_never_overwrites_it(project: Project) -> None:
    result = project.bflow("init", "-f", "flows/site.toml")
    assert result.returncode == 2 and "cannot write the Flowfile" in result.stderr
    (project.root / "flows").mkdir()
    assert project.bflow("init", "-f", "flows/site.toml").returncode == 0
    assert not (project.root / "Flowfile").exists()
    assert project.bflow("-f", "flows/site.toml", "validate").returncode == 0
    again = project.bflow("init", "-f", "flows/site.toml")
    assert again.returncode == 2 and "never overwrites" in again.stderr


def test_init_says_a_command_that_works_where_the_user_stands(project: Project) -> None:
    # it said 'bflow' after -C (no Flowfile where the user stands), left a name with a space
    # unquoted, and a name too long for the disk was an internal error (exit 3)
    (project.root / "my dir").mkdir()
    said = project.bflow("init", "-C", "my dir", "-f", "it's.toml").stdout
    command = said.split("; run ")[1].removesuffix(" to build it\n")
    assert command == """bflow -C 'my dir' -f 'it'"'"'s.toml'"""
    result = subprocess.run(["sh", "-c", command.replace("bflow", f"{sys.executable} -m "
                                                                 "buildflow", 1) + " -n"],
                            cwd=project.root, env=bflow_env(), capture_output=True, text=True)
    assert result.returncode == 0 and "would run" in result.stdout, result.stderr
    too_long = project.bflow("init", "-f", "x" * 300 + ".toml")
    assert too_long.returncode == 2 and "cannot write the Flowfile: File name too long" \
        in too_long.stderr


def test_list_takes_back_each_name_it_prints(project: Project) -> None:
    # an item holding [1] was read as a pattern and matched nothing; a name ending in a
    # space lost it
    project.flowfile('[tasks.cc]\nforeach = "src/*"\ncmd = "true"\n')
    project.write("src/v[1].c", "")
    project.write("src/end ", "")
    project.write("src/v1.c", "")
    names = project.bflow("list", "cc:*").stdout.splitlines()
    assert names == ["cc:src/end ", "cc:src/v1.c", "cc:src/v[1].c"]
    for name in names:  # `[1]` is itself: it matched v1.c too, as a set of characters
        assert project.bflow("list", name).stdout.splitlines() == [name]


def test_did_you_mean_ignores_case(project: Project) -> None:
    project.flowfile(GOOD)
    result = project.bflow("build", "ALL")
    assert result.returncode == 2 and "did you mean 'all'?" in result.stderr


def test_a_mistyped_command_is_suggested(project: Project) -> None:
    project.flowfile(GOOD)
    result = project.bflow("stauts")
    assert result.returncode == 2
    assert "unknown target 'stauts'" in result.stderr and "the command 'status'" in result.stderr
    project.flowfile('[tasks.link]\ncmd = "true"\noutputs = ["build/app"]\n')
    near = project.bflow("build/ap")  # a target near it: that one, not also the command build
    assert near.stderr.rstrip().endswith("(did you mean 'build/app'?) (see 'bflow list')")


@pytest.mark.parametrize(("word", "meant"), [("help", "'bflow --help'"),
                                              ("tasks", "'bflow list'")])
def test_another_tool_s_command_word_is_said_as_bflow_s(project: Project, word: str,
                                                          meant: str) -> None:
    project.flowfile(GOOD)
    result = project.bflow(word)
    assert (result.returncode, result.stderr) == (
        2, f"bflow: error: unknown target '{word}': not a task, a TASK:ITEM instance or a "
           f"declared output (see 'bflow list') (or {meant}?)\n")
    project.flowfile(f'[tasks.{word}]\ncmd = "echo ran >> log.txt"\n')
    assert project.bflow(word).returncode == 0  # a task of that name is built, as ever
    assert (project.root / "log.txt").read_text() == "ran\n"


@pytest.mark.parametrize(("option", "meant"), [
    ("--list", "'bflow list'"), ("-l", "'bflow list'"), ("--watch", "'bflow watch'"),
    ("-s", "-q"), ("--force", "-B"), ("--taskfile", "-f PATH")])
def test_another_tool_s_option_is_said_as_bflow_s(project: Project, option: str,
                                                   meant: str) -> None:
    project.flowfile(GOOD)
    result = project.bflow(option)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == \
        f"bflow build: error: unrecognized arguments: {option} (bflow's: {meant})"
    assert project.bflow("--bogus").stderr.splitlines()[-1] == \
        "bflow build: error: unrecognized arguments: --bogus"


@pytest.mark.parametrize("existing", ["Flowfile", "Flowfile.toml"])
def test_init_never_overwrites(project: Project, existing: str) -> None:
    project.write(existing, "# mine\n")
    result = project.bflow("init")
    assert result.returncode == 2
    assert "already exists; bflow init never overwrites it" in result.stderr
    assert project.read(existing) == "# mine\n"
    assert not (existing == "Flowfile.toml" and (project.root / "Flowfile").exists())


def test_version_and_help_work_beside_a_broken_flowfile(project: Project) -> None:
    project.write("Flowfile", BROKEN)
    version = project.bflow("--version")
    assert (version.returncode, version.stdout) == (0, f"bflow {__version__}\n")
    assert project.bflow("validate", "--version").stdout == f"bflow {__version__}\n"
    top = project.bflow("--help")
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS)
    for command in COMMANDS:
        result = project.bflow(command, "--help")
        assert result.returncode == 0, command
        assert result.stdout.startswith(f"usage: bflow {command}"), command


def test_help_is_wrapped_to_the_terminal_width(project: Project) -> None:
    def widest(columns: int) -> int:
        help_text = project.bflow("build", "--help", env={"COLUMNS": str(columns)}).stdout
        return max(map(len, help_text.splitlines()))

    assert widest(50) <= 50
    assert widest(200) > 100  # the usage line, whole


def test_parsing_arguments_and_loading_the_project_import_neither_shutil_nor_pathlib(
        project: Project) -> None:
    # What `list`, `status`, `graph` and a full build do first. argparse, left to find the
    # terminal's width, imports shutil (with bz2 and lzma); pathlib brings fnmatch, urllib
    # and ipaddress. Without site (-S), whose start-up may import either itself.
    import xxhash  # where the dependencies are, which -S leaves off the path

    project.flowfile(GOOD)
    packages = os.path.dirname(os.path.dirname(xxhash.__file__))
    probe = (f"import sys; sys.path[:0] = [{str(REPO)!r}, {packages!r}]; "
             "from buildflow.arguments import parse_args; "
             "from buildflow import fastpath; "
             "parse_args(['graph', '--format', 'dot']); "
             "fastpath.load(file=None, overrides={}); "
             "print([m for m in ('shutil', 'pathlib') if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True,
                            text=True, check=True, cwd=project.root).stdout
    assert loaded == "[]\n"


@pytest.mark.parametrize("argv", [["--lock-timeout", "-1"], ["--lock-timeout", "nan"],
                                  ["watch", "--debounce", "-0.5"], ["watch", "--debounce", "inf"],
                                  ["--lock-timeout", "soon"]])
def test_a_time_in_seconds_is_a_number_0_or_more(project: Project, argv: list[str]) -> None:
    project.flowfile("[tasks.a]\ncmd = 'echo a >> runs.log'\n")
    result = project.bflow(*argv)
    assert result.returncode == 2 and argv[-1] in result.stderr and "seconds" in result.stderr
    assert project.runs() == []


def test_discovery_from_a_subdirectory(project: Project) -> None:
    project.flowfile(GOOD)
    (project.root / "deep" / "er").mkdir(parents=True)
    result = run_bflow("build", "--plain", "src", cwd=project.root / "deep" / "er")
    assert result.returncode == 0, result.stderr
    assert project.read("out/word.txt") == "hello\n"
    assert project.runs() == ["hello"]
    assert not (project.root / "deep" / "er" / "out").exists()


def test_an_output_path_target_is_relative_to_where_bflow_runs(project: Project) -> None:
    project.flowfile(GOOD)
    (project.root / "out").mkdir()
    result = run_bflow("build", "--plain", "word.txt", cwd=project.root / "out")
    assert result.returncode == 0, result.stderr
    assert project.runs() == ["hello"]


def test_no_flowfile_anywhere(project: Project) -> None:
    result = project.bflow("validate")
    assert result.returncode == 2
    assert "no Flowfile found" in result.stderr and "bflow init" in result.stderr


def test_file_and_directory_options(project: Project) -> None:
    project.write("Flowfile", BROKEN)
    project.write("sub/other.toml", GOOD.replace('"*.c"', '"../*.c"'))
    project.write("a.c", "")
    by_file = project.bflow("-f", "sub/other.toml", "validate")
    assert (by_file.returncode, by_file.stdout) == (0, "sub/other.toml: ok, 3 tasks\n")
    after = project.bflow("validate", "-C", "sub", "-f", "other.toml")
    assert (after.returncode, after.stdout) == (0, "other.toml: ok, 3 tasks\n")
    missing = project.bflow("-f", "nope.toml", "validate")
    assert missing.returncode == 2 and "nope.toml: no such Flowfile" in missing.stderr
    directory = project.bflow("-f", "sub", "validate")  # it said "no such Flowfile"
    assert (directory.returncode, directory.stderr) == (
        2, "bflow: error: sub: a directory, not a Flowfile (-f names the file; -C sub runs in "
           "the directory)\n")
    bad_dir = project.bflow("-C", "nowhere", "validate")
    assert bad_dir.returncode == 2 and "-C nowhere" in bad_dir.stderr


def test_directory_option_finds_the_flowfile_there(project: Project) -> None:
    project.write("sub/Flowfile", GOOD)
    result = project.bflow("-C", "sub", "build", "--plain", "all")
    assert result.returncode == 0, result.stderr
    assert project.read("sub/out/word.txt") == "hello\n"


def test_var_overrides_on_the_command_line(project: Project) -> None:
    project.flowfile(GOOD)
    assert project.bflow("build", "--plain", "src", "WORD=bye").returncode == 0
    assert project.read("out/word.txt") == "bye\n"
    bad = project.bflow("build", "src", "1X=bye")
    assert bad.returncode == 2 and "a var override is NAME=VALUE" in bad.stderr


def test_a_target_with_an_equals_sign_that_names_no_var_is_a_target(project: Project) -> None:
    project.flowfile("""
        [tasks.up]
        foreach = "src/*.txt"
        cmd = "echo {name} >> runs.log && tr a-z A-Z < {item} > {output}"
        outputs = ["out/{stem}.up"]
        """)
    project.write("src/k=v.txt", "kv\n")
    project.write("src/x.txt", "x\n")
    assert project.build("out/k=v.up") == ["k=v.txt"]
    assert project.build("up:src/x.txt") == ["x.txt"]
    assert project.read("out/k=v.up") == "KV\n"
    bad = project.bflow("out/k=w.up")
    assert bad.returncode == 2
    assert "unknown target 'out/k=w.up'" in bad.stderr and "did you mean 'out/k=v.up'" in \
        bad.stderr and "a var override is NAME=VALUE" in bad.stderr


def test_validate_and_list_take_var_overrides(project: Project) -> None:
    project.flowfile("""
    [vars]
    SRC = "missing.txt"
    [tasks.copy]
    description = "copy {SRC}"
    cmd = "cp {input} {output}"
    inputs = ["{SRC}"]
    outputs = ["out.txt"]
    """)
    project.write("there.txt", "x\n")
    assert project.bflow("validate").returncode == 2
    assert project.bflow("validate", "SRC=there.txt").returncode == 0
    assert project.bflow("list", "SRC=there.txt").returncode == 0
    wrong = project.bflow("validate", "copy")
    assert wrong.returncode == 2 and "only VAR=VALUE overrides" in wrong.stderr


def test_under_a_profiler_bflow_exits_the_usual_way_so_the_profile_is_written(
        project: Project) -> None:
    # bflow ends with os._exit, skipping the interpreter's teardown, except under a profiler or
    # a coverage tool, which write their data at exit.
    project.flowfile('[tasks.a]\ncmd = "true"\n')
    profile = project.root / "bflow.prof"
    result = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m",
                             "buildflow"], cwd=project.root, env=bflow_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 ran" in result.stdout
    assert profile.stat().st_size > 0


def test_overriding_an_undeclared_var_is_a_usage_error(project: Project) -> None:
    project.flowfile(GOOD)
    result = project.bflow("WROD=bye")
    assert result.returncode == 2
    assert result.stderr == ("bflow: error: WROD=bye: Flowfile declares no var 'WROD' (did you "
                             "mean 'WORD'?); declare it under [vars] to override it\n")
    assert project.runs() == []
    assert project.bflow("status", "NOPE=1").returncode == 2


def test_explain_takes_var_overrides(project: Project) -> None:
    project.flowfile(GOOD)
    assert project.bflow("src").returncode == 0
    assert project.bflow("explain", "src").stdout == "src: up to date\n"
    result = project.bflow("explain", "WORD=bye", "out/word.txt")
    assert (result.returncode, result.stdout) == (0, "src: stale\n  - commands changed\n")
    result = project.bflow("explain", "src", "cc")
    assert result.returncode == 2
    assert "bflow explain takes one TARGET (a task, TASK:ITEM or output path), got 2: src cc" \
        in result.stderr


def test_build_options_before_the_command_word(project: Project) -> None:
    project.flowfile("""
        [tasks.test]
        cmd = "echo test >> runs.log"
        [tasks.fail]
        cmd = "false"
        """)
    assert project.bflow("-k", "test").returncode == 0
    assert project.runs() == ["test"]
    result = project.bflow("-j1", "-k", "--plain", "build")  # fail first, test still runs
    assert result.returncode == 1 and "FAILED fail" in result.stdout
    assert project.runs() == ["test", "test"]
    result = project.bflow("-j", "2", "status")
    assert result.returncode == 2
    assert "bflow status: error: unrecognized arguments: -j" in result.stderr


@pytest.fixture(scope="module", autouse=True)
def parsers_made_once() -> Iterator[None]:
    """bflow makes its parsers once per process; the property tests below parse hundreds of
    command lines in one, so they make them once too (parsing leaves a parser as it was)."""
    made = (arguments.command_parser, arguments._finder)
    arguments.command_parser, arguments._finder = (functools.cache(made[0]),
                                                   functools.cache(made[1]))
    yield
    arguments.command_parser, arguments._finder = made


# Words and options a plain build's command line is made of, and some it must not take.
_TOKENS = st.sampled_from(["build", "status", "list", "a", "b:c", "out/x.o", "", "X=1",
                           "x_y=", "1X=2", "=v", "-k", "--keep-going", "-q", "--quiet",
                           "--plain", "--stream", "-v", "--json", "-n", "-kq", "-j", "--jobs",
                           "-j3", "-j0", "-j03", "-jk", "-j-1", "--jobs=2", "-j=2", "3", "0",
                           "-3", "\u0663", "--", "-", "-f", "Flowfile", "--keep", "--no-cache",
                           "-C", ".", "--plain=1", "-h", "--version"])


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(_TOKENS, st.text(max_size=4)), max_size=7))
def test_the_fast_parser_reads_what_argparse_reads(argv: list[str]) -> None:
    """Wherever the fast path's reader of plain builds takes a command line, argparse takes it
    too and reads the same targets, overrides and options."""
    simple = cmdline.read(argv, COMMANDS)
    if simple is None:
        return
    targets, overrides, options = simple
    args, _ = parse_args(argv)
    assert args.command == "build"
    assert cmdline.split_overrides(args.targets) == (targets, overrides)
    assert (args.jobs, args.keep_going, args.quiet, args.plain, args.stream, args.file) == \
        (options.jobs, options.keep_going, options.quiet, options.plain, options.stream,
         options.file)
    assert options.cache and not args.no_cache
    assert not (args.verbose or args.json or args.dry_run or args.always_make
                or args.directory or args.lock_timeout or args.trace or args.report
                or args.passthrough)


# Options that may come before the command word, each with a value if it takes one.
_BEFORE = st.sampled_from([["-f", "build"], ["--file=list"], ["-C", "status"], ["-q"], ["-v"],
                           ["--plain"], ["--json"], ["-j", "2"], ["-j2"], ["-kj", "3"], ["-k"],
                           ["-n"], ["-B"], ["--lock-timeout", "1"], ["--trace", "graph"],
                           ["--stream"], ["--no-cache"]])


@settings(max_examples=300, deadline=None)
@given(st.lists(_BEFORE, max_size=4), st.sampled_from(sorted(COMMANDS)))
def test_the_command_word_is_found_after_a_builds_options(before: list[list[str]],
                                                          command: str) -> None:
    """The word after a build's options (whose values may be command names) is the command,
    and the options are read as the command's parser reads them."""
    argv = [token for option in before for token in option] + [command]
    try:
        args, first_target = parse_args(argv)
    except SystemExit:  # the command takes no such option, or needs an argument
        assert command not in ("build", "watch") or not before
        return
    assert (args.command, first_target) == (command, None)
    if command in ("build", "watch"):
        assert args.targets == []


def test_every_command_has_a_handler() -> None:
    assert set(cli._HANDLERS) == set(COMMANDS)


@pytest.mark.parametrize("argv, command, first", [
    (["-j", "2", "status"], "status", None), (["statuss"], "build", "statuss"),
    (["-f", "list", "all"], "build", "all"), (["all", "list"], "build", "all"),
    (["--format", "dot", "graph"], "build", "dot"), (["-j"], "build", None),
    (["--help"], None, None), (["-q", "--version"], None, None), (["-h", "list"], "list", None)])
def test_the_command_word(argv: list[str], command: str | None, first: str | None) -> None:
    from buildflow.arguments import find_command

    name, rest, first_target = find_command(argv)
    assert (name, first_target) == (command, first)
    if name is not None and first is None and command in argv:
        assert len(rest) == len(argv) - 1


ARGS_FLOWFILE = """
[tasks.prep]
cmd = "echo prep >> runs.log && printf '[%s]' {args} > {output}"
inputs = "a.txt"
outputs = "out/prep.txt"
[tasks.test]
cmd = "echo test >> runs.log && printf '[%s]' {args} > {output}"
inputs = "a.txt"
outputs = "out/test.txt"
deps = "prep"
env = { ARGS = "{args}" }
[tasks.lint]
cmd = "echo lint >> runs.log"
inputs = "a.txt"
"""


def test_args_after_a_double_dash_go_to_the_named_tasks_shell_quoted(project: Project) -> None:
    project.flowfile(ARGS_FLOWFILE)
    project.write("a.txt", "a")
    assert project.build("test", "--", "-k", "two words") == ["prep", "test"]
    assert project.read("out/test.txt") == "[-k][two words]"
    assert project.read("out/prep.txt") == "[]"  # a task not named gets none
    assert project.build("test", "--", "-k", "two words") == []
    assert project.build("test", "--", "-k", "one") == ["test"]  # part of its action
    assert project.build("test") == ["test"]
    assert project.read("out/test.txt") == "[]"
    assert project.build("test") == []
    assert project.build("test") == []  # the no-op's proof must not vouch for a build with args
    assert project.build("test", "--", "-k", "one") == ["test"]
    status = project.bflow("status", "test", "--", "-k", "two")
    assert status.stdout == "test: commands changed\n"


def test_args_no_named_task_takes_are_refused(project: Project) -> None:
    project.flowfile(ARGS_FLOWFILE)
    project.write("a.txt", "a")
    result = project.bflow("lint", "--", "-x")
    assert (result.returncode, result.stderr) == (2, (
        "bflow: error: -- -x: no task named (lint) uses {args}; write {args} in its cmd where "
        "the arguments go, or name the task that takes them\n"))
    result = project.bflow("list", "--", "-x")
    assert result.returncode == 2
    assert "bflow list: error: arguments after -- are for the tasks of build, watch, status, " \
           "explain, graph, not list" in result.stderr
    project.flowfile(ARGS_FLOWFILE + '[tasks.bad]\ncmd = "true"\noutputs = "out/{args}"\n')
    result = project.bflow("validate")
    assert (result.returncode, result.stderr) == (2, (
        "bflow: error: Flowfile: tasks.bad.outputs[0]: '{args}' (what follows -- on the "
        "command line) is for cmd and env only\n"))
    assert project.runs() == []


def test_a_linked_flowfile_s_project_is_where_the_link_is(project: Project) -> None:
    # as Make and Ninja take the directory the file was found in: the link's target's
    # directory was the root, so its inputs were not found and outputs went there
    project.write("src/a.txt", "a\n")
    project.write("tools/Flowfile", '[tasks.x]\ncmd = "cat src/a.txt > out.txt"\n'
                                    'inputs = ["src/a.txt"]\noutputs = ["out.txt"]\n')
    (project.root / "Flowfile").symlink_to("tools/Flowfile")
    for _ in range(2):  # the second on the fast path
        result = project.bflow()
        assert result.returncode == 0, result.stderr
    assert project.read("out.txt") == "a\n"
    assert sorted(p.name for p in (project.root / "tools").iterdir()) == ["Flowfile"]


def test_a_task_that_removes_the_directory_bflow_started_in_is_no_internal_error(
        project: Project) -> None:
    # the README's `rm -rf site && ...`, run from inside site/: the build succeeded, then
    # bflow read the working directory again and stopped with exit 3
    project.write("src/a.txt", "a\n")
    project.flowfile("""
        [tasks.site]
        cmd = "rm -rf site && mkdir -p site/sub && cp src/*.txt site/"
        inputs = ["src/*.txt"]
        outputs = ["site/"]
        """)
    assert project.bflow().returncode == 0
    result = run_bflow("-B", cwd=project.root / "site" / "sub")
    assert result.returncode == 0, result.stderr
    assert project.read("site/a.txt") == "a\n"


def test_a_stdout_left_non_blocking_gets_all_of_the_output(project: Project) -> None:
    """A parent that leaves its pipe non-blocking (as some CI runners and Node do) lost all
    bflow printed past what the pipe held, the summary too, with exit 0."""
    project.flowfile('[tasks.big]\ncmd = "seq 1 40000 && echo big >> runs.log"\n')
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    with open(reader, "rb") as pipe:
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", "-v"],
                                   cwd=project.root, env=bflow_env(), stdout=writer)
        os.close(writer)
        # read nothing until the pipe is full, 64 KiB less what its last pages leave empty
        # (or bflow has ended)
        deadline = time.monotonic() + 60
        while waiting_in(reader) < 60 * 1024 and process.poll() is None:
            assert time.monotonic() < deadline, "bflow printed nothing"
            time.sleep(0.01)
        out = pipe.read().decode()
    assert process.wait(60) == 0
    assert "  | 40000\n" in out and out.endswith("bflow: 1 ran, 0 up to date in " +
                                                    out.rsplit(" in ", 1)[1])


def test_bflow_started_without_stdout_or_stderr(project: Project) -> None:
    """`bflow >&-` was an internal error with a raw traceback, `--version` too, and with
    stderr closed a build that succeeded exited 1. A closed descriptor is held with /dev/null,
    so no file bflow opens takes its place; a closed stdout starts nothing, as one closing
    during a build does."""
    project.flowfile('[tasks.a]\ncmd = "echo a >> runs.log"\n')

    def bflow(redirect: str, *args: str) -> subprocess.CompletedProcess[str]:
        words = " ".join([sys.executable, "-m", "buildflow", *args])
        return subprocess.run(["sh", "-c", f"exec {words} {redirect}"], cwd=project.root,
                              env=bflow_env(), capture_output=True, text=True, timeout=60)

    closed = bflow(">&-", "--plain")
    assert (closed.returncode, closed.stdout) == (1, "")
    assert closed.stderr == ("bflow: error: stdout is closed, so nothing runs (as when it "
                             "closes during a build); give bflow one: `> /dev/null` for none\n")
    assert not (project.root / "runs.log").exists()
    assert bflow(">&-", "--version").returncode == 1
    quiet = bflow("2>&-", "--plain")
    assert quiet.returncode == 0 and "bflow: 1 ran" in quiet.stdout
    no_input = bflow("<&-", "--plain", "-B")
    assert no_input.returncode == 0 and project.runs() == ["a", "a"]
