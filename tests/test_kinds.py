"""Task kinds from the entry point group `buildflow.kinds`, here from a distribution that
exists only as metadata on PYTHONPATH (a `*.dist-info` directory), as a pip install leaves it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, Project, bflow_env

KINDS = '''
def copy(table):
    src = table.pop("src")
    if not isinstance(src, str):
        raise ValueError(f"src must be a string, got {src!r}")
    return {"cmd": "cp {input} {output} && echo {task} >> runs.log", "inputs": [src],
            "outputs": [table.pop("dst")], **table}

def broken(table):
    return 1 / 0

def listing(table):
    return ["cmd"]

def quits(table):
    raise SystemExit(4)

def oddkey(table):
    return {1: "x", "cmd": "true"}

def envy(table):
    import os
    print("expanding envy")  # on stdout, where --json keeps events
    os.environ["KIND_SET"] = "leaked"
    return {"cmd": f"echo {os.environ.get('KV', 'none')}-$KIND_SET > {{output}} && "
                   "echo {task} >> runs.log", "outputs": ["o.txt"]}
'''


def plugin_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with bflow and a distribution `bflow-copy` declaring six kinds."""
    plugins = tmp_path / "plugins"
    install(plugins, "bflow-copy", """\
        copy = bflow_copy:copy
        broken = bflow_copy:broken
        listing = bflow_copy:listing
        quits = bflow_copy:quits
        oddkey = bflow_copy:oddkey
        envy = bflow_copy:envy
        """)
    (plugins / "bflow_copy.py").write_text(KINDS)
    return {"PYTHONPATH": f"{REPO}:{plugins}"}


def install(where: Path, name: str, kinds: str) -> None:
    """Install distribution `name` in `where` as metadata alone, declaring `kinds` (the lines
    of its `buildflow.kinds` entry points)."""
    info = where / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[buildflow.kinds]\n" + textwrap.dedent(kinds))


def copying(project: Project, tmp_path: Path, extra: str = "") -> dict[str, str]:
    """A project of one task of kind `copy` (with `extra` keys), and the environment that has
    the kind installed."""
    project.write("a.txt", "a")
    project.flowfile(f"""
        [tasks.copy]
        kind = "copy"
        src = "a.txt"
        dst = "out/b.txt"
        {extra}
        """)
    return plugin_env(tmp_path)


def test_a_kind_expands_its_own_keys_at_load(project: Project, tmp_path: Path) -> None:
    env = copying(project, tmp_path, 'description = "copied by a kind"')
    assert project.build(env=env) == ["copy"]
    assert project.read("out/b.txt") == "a"
    assert project.build(env=env) == []
    assert "copied by a kind" in project.bflow("list", env=env).stdout


def test_list_kinds_needs_no_flowfile(project: Project, tmp_path: Path) -> None:
    env = plugin_env(tmp_path)
    result = project.bflow("list", "--kinds", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["broken   bflow_copy:broken",
                                             "copy     bflow_copy:copy",
                                             "envy     bflow_copy:envy"]
    ignored = project.bflow("list", "--kinds", "cop*", env=env)
    assert ignored.returncode == 2  # the pattern was ignored, every kind listed
    assert "list --kinds takes nothing more (got cop*)" in ignored.stderr


def test_kind_errors_name_the_task_the_kind_and_the_key(project: Project, tmp_path: Path) -> None:
    env = plugin_env(tmp_path)
    project.flowfile("""
        [tasks.nosrc]
        kind = "copy"
        dst = "x"
        [tasks.badsrc]
        kind = "copy"
        src = 3
        dst = "y"
        [tasks.raises]
        kind = "broken"
        [tasks.notable]
        kind = "listing"
        [tasks.unknown]
        kind = "cpy"
        [tasks.quits]
        kind = "quits"
        [tasks.oddkey]
        kind = "oddkey"
        """)
    result = project.bflow("validate", env=env)
    assert result.returncode == 2
    err = result.stderr
    assert "Flowfile: tasks.nosrc: kind 'copy': missing key 'src'" in err
    assert "Flowfile: tasks.badsrc: kind 'copy': src must be a string, got 3" in err
    assert "Flowfile: tasks.raises: kind 'broken' (bflow_copy:broken) failed: " \
           "ZeroDivisionError: division by zero" in err
    assert "Flowfile: tasks.notable: kind 'listing' (bflow_copy:listing) returned a list, " \
           "not a table" in err
    assert "Flowfile: tasks.unknown.kind: unknown kind 'cpy' (did you mean 'copy'?) " \
           "(installed kinds: broken, copy, envy, listing, oddkey, quits;" in err
    # an exit() and a key that is no string were no load error: bflow exited 4, or 3
    assert "Flowfile: tasks.quits: kind 'quits' (bflow_copy:quits) failed: SystemExit: 4" in err
    assert "Flowfile: tasks.oddkey: kind 'oddkey' (bflow_copy:oddkey) returned a table with " \
           "the key 1, not a string naming a task key" in err


def test_a_kind_two_distributions_declare_is_an_error_naming_both(project: Project,
                                                                   tmp_path: Path) -> None:
    # one of them was used, whichever the order of sys.path found first, and nothing said so
    env = copying(project, tmp_path)
    other = tmp_path / "elsewhere"
    install(other, "acme-kinds", "copy = acme_kinds:copy\n")
    (other / "acme_kinds.py").write_text(KINDS)  # a kind that works: either would have done
    env["PYTHONPATH"] += f":{other}"
    both = ("kind 'copy' is declared by 2 installed distributions: acme-kinds "
            "(acme_kinds:copy) and bflow-copy (bflow_copy:copy); uninstall all but one of them")
    for command in ("build", "validate"):
        result = project.bflow(command, env=env)
        assert result.returncode == 2 and f"Flowfile: tasks.copy.kind: {both}" in result.stderr
    assert project.runs() == []
    listed = project.bflow("list", "--kinds", env=env)
    assert listed.returncode == 0
    assert "copy     acme_kinds:copy  (acme-kinds)\ncopy     bflow_copy:copy  (bflow-copy)\n" \
        in listed.stdout
    assert f"bflow: warning: {both}" in listed.stderr
    project.flowfile('[tasks.e]\nkind = "envy"\n')  # a kind declared once is used as ever
    assert project.build(env=env) == ["e"]


def test_a_change_to_the_kind_s_declaration_is_a_change_to_the_project(
        project: Project, tmp_path: Path) -> None:
    # the entry point pointed at another callable, then the distribution's metadata removed
    # with the sources left (an editable install uninstalled): both answered "up to date"
    env = copying(project, tmp_path)
    assert project.build(env=env) == ["copy"]
    assert project.build(env=env) == []
    module = tmp_path / "plugins" / "bflow_copy.py"
    module.write_text(KINDS + "\ndef copy2(table):\n    table['cmd'] = 'echo v2 > {output} "
                              "&& echo {task} >> runs.log'\n    return copy(table)\n")
    assert project.build(env=env) == []  # the module changed, what `copy` makes did not
    entries = tmp_path / "plugins" / "bflow_copy-1.0.dist-info" / "entry_points.txt"
    entries.write_text(entries.read_text().replace("bflow_copy:copy\n", "bflow_copy:copy2\n"))
    assert project.build(env=env) == ["copy"]
    assert project.read("out/b.txt") == "v2\n"
    entries.unlink()
    result = project.bflow(env=env)
    assert result.returncode == 2
    assert "unknown kind 'copy'" in result.stderr


def test_a_change_to_the_kind_s_code_is_a_change_to_the_project(project: Project,
                                                                  tmp_path: Path) -> None:
    # The caches vouch for a project by its Flowfile; a kind's code makes the project too.
    env = copying(project, tmp_path)
    assert project.build(env=env) == ["copy"]
    assert project.build(env=env) == []
    module = tmp_path / "plugins" / "bflow_copy.py"
    module.write_text(KINDS.replace("cp {input} {output}", "(cat {input}; echo v2) > {output}"))
    assert project.build(env=env) == ["copy"]
    assert project.read("out/b.txt") == "av2\n"
    assert project.build(env=env) == []
    module.unlink()  # the plug-in uninstalled
    result = project.bflow(env=env)
    assert result.returncode == 2
    assert "kind 'copy'" in result.stdout + result.stderr


def test_what_a_kind_reads_and_does_to_bflow_s_process(project: Project, tmp_path: Path) -> None:
    """A kind reading the environment was served stale by the project cache (with shortcuts
    checked, exit 3), its os.environ reached the commands of a fresh load only, and its print
    went to stdout, ahead of `--json`'s events."""
    env = plugin_env(tmp_path)
    project.flowfile('[tasks.e]\nkind = "envy"\n')
    assert project.build(env={**env, "KV": "1"}) == ["e"]
    assert project.read("o.txt") == "1-\n"
    assert project.build(env={**env, "KV": "1"}) == []
    result = project.bflow("--json", env={**env, "KV": "2"})
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("{") for line in result.stdout.splitlines())
    assert "expanding envy" in result.stderr
    assert project.runs() == ["e", "e"] and project.read("o.txt") == "2-\n"


def test_a_kind_edited_is_loaded_again_in_the_same_process(project: Project,
                                                            tmp_path: Path) -> None:
    """A second load in one process (the Python API's, watch's) took the plug-in's module as
    first imported: the old expansion, and the task up to date."""
    env = copying(project, tmp_path)
    module = tmp_path / "plugins" / "bflow_copy.py"
    script = f"""
import pathlib, sys
import buildflow
sys.path.insert(0, {str(tmp_path / "plugins")!r})
module = pathlib.Path({str(module)!r})
for version in ("v1", "v2"):
    module.write_text(module.read_text().replace("cp {{input}} {{output}}",
                                                 f"echo {{version}} > {{{{output}}}}"))
    result = buildflow.build(buildflow.load("Flowfile"), ["copy"])
    print(version, result.tasks["copy"].outcome.name, open("out/b.txt").read().strip())
    module.write_text(module.read_text().replace(f"echo {{version}} > {{{{output}}}}",
                                                 "cp {{input}} {{output}}"))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=project.root,
                            env=bflow_env(env), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-3:] == ["v1 RAN v1", "v2 RAN v2", ""]
