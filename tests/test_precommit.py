"""The shipped .pre-commit-hooks.yaml, driven by the real pre-commit framework in a temporary git
repository and in fresh clones of it. The hook definitions are copied into a `repo: local`
config with `language: system` (a `bflow` on PATH runs this checkout), so no network is needed."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO, bflow_env

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"

FLOWFILE = """\
[tasks.shout]
cmd = "tr a-z A-Z < {input} > {output}"
inputs = ["src.txt"]
outputs = ["derived.txt"]
"""

STALE = "derived.txt: differs from what a build gives"


def shipped_hooks() -> dict[str, dict[str, object]]:
    return {hook["id"]: hook for hook in yaml.safe_load(HOOKS_FILE.read_text())}


class Repo:
    """A git repository with a Flowfile, pre-commit installed, and `bflow` on PATH: built and
    committed, or a fresh clone of one (no records: `.bflow/` is ignored)."""

    def __init__(self, root: Path, hook_ids: list[str], config: str | None = None) -> None:
        self.root = root / "repo"
        self.root.mkdir()
        bin_dir = root / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "bflow"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m buildflow "$@"\n')
        wrapper.chmod(0o755)
        self.env = bflow_env({
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PRE_COMMIT_HOME": str(root / "pre-commit-home"),
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        })
        if config is None:
            hooks = [dict(shipped_hooks()[hook_id], language="system") for hook_id in hook_ids]
            config = yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
        self.write(".pre-commit-config.yaml", config)
        self.write("Flowfile", FLOWFILE)
        self.write(".gitignore", ".bflow/\n")
        self.write("src.txt", "hello\n")
        self.git("init", "-q", "-b", "main")
        self.install_hooks()
        assert self.run("bflow").returncode == 0
        self.git("add", ".")
        assert self.commit().returncode == 0

    def install_hooks(self) -> None:
        installed = self.run(sys.executable, "-m", "pre_commit", "install")
        assert installed.returncode == 0, installed.stdout + installed.stderr

    def clone(self) -> Repo:
        """A fresh `git clone` beside this repository, with pre-commit installed in it."""
        clone = copy.copy(self)
        clone.root = self.root.parent / "clone"
        self.git("clone", "-q", str(self.root), str(clone.root))
        clone.install_hooks()
        assert not (clone.root / ".bflow").exists()
        return clone

    def write(self, path: str, text: str) -> None:
        (self.root / path).write_text(text)

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=120)

    def git(self, *args: str) -> str:
        result = self.run("git", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def commit(self) -> subprocess.CompletedProcess[str]:
        return self.run("git", "commit", "-q", "-m", "change")

    def commits(self) -> int:
        return int(self.git("rev-list", "--count", "HEAD"))

    def committed(self, path: str) -> str:
        return self.git("show", f"HEAD:{path}")


def test_shipped_manifest_is_valid_and_runs_bflow() -> None:
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest",
                             str(HOOKS_FILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = shipped_hooks()
    assert hooks["bflow-build"]["entry"] == "bflow build"
    assert hooks["bflow-check"]["entry"] == "bflow status --check --outputs"
    for hook in hooks.values():
        assert hook["pass_filenames"] is False and hook["always_run"] is True


def test_build_hook_regenerates_and_fails_until_the_result_is_added(tmp_path: Path) -> None:
    repo = Repo(tmp_path, ["bflow-build"])
    assert repo.commits() == 1 and repo.committed("derived.txt") == "HELLO\n"
    repo.write("src.txt", "world\n")
    repo.git("add", "src.txt")
    failed = repo.commit()
    assert failed.returncode != 0
    assert "files were modified by this hook" in failed.stdout + failed.stderr
    assert repo.commits() == 1
    assert repo.read("derived.txt") == "WORLD\n"  # the hook regenerated it
    repo.git("add", "derived.txt")
    passed = repo.commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert repo.commits() == 2 and repo.committed("derived.txt") == "WORLD\n"


def test_check_hook_in_a_fresh_clone_passes_what_a_build_gives_and_names_a_stale_output(
        tmp_path: Path) -> None:
    clone = Repo(tmp_path, ["bflow-check"]).clone()
    clone.write("notes.txt", "no records here, and the committed output is right\n")
    clone.git("add", "notes.txt")
    passed = clone.commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    clone.write("src.txt", "world\n")
    clone.git("add", "src.txt")
    failed = clone.commit()
    assert failed.returncode != 0 and STALE in failed.stdout + failed.stderr
    assert clone.commits() == 2 and clone.read("derived.txt") == "HELLO\n"  # it only checks
    assert not (clone.root / ".bflow").exists()
    assert clone.run("bflow").returncode == 0
    clone.git("add", "derived.txt")
    passed = clone.commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert clone.commits() == 3 and clone.committed("derived.txt") == "WORLD\n"


def test_check_hook_checks_what_is_staged_not_unstaged_changes(tmp_path: Path) -> None:
    clone = Repo(tmp_path, ["bflow-check"]).clone()
    clone.write("src.txt", "world\n")
    assert clone.run("bflow").returncode == 0  # regenerated here, but not staged
    clone.git("add", "src.txt")
    failed = clone.commit()
    assert failed.returncode != 0 and STALE in failed.stdout + failed.stderr
    assert clone.read("derived.txt") == "WORLD\n"  # pre-commit put the unstaged change back
    clone.git("add", "derived.txt")
    clone.write("src.txt", "an unstaged edit\n")  # out of step with derived.txt, not staged
    passed = clone.commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert clone.committed("derived.txt") == "WORLD\n"
    assert clone.read("src.txt") == "an unstaged edit\n"


def readme_configs() -> dict[str, str]:
    """The README's `.pre-commit-config.yaml` snippets as written, by the hook each names."""
    readme = (REPO / "README.md").read_text()
    configs, start = {}, readme.find("# .pre-commit-config.yaml")
    while start != -1:
        text = textwrap.dedent(readme[start:readme.index("```", start)])
        (hook_id,) = (hook["id"] for repo in yaml.safe_load(text)["repos"]
                      for hook in repo["hooks"])
        configs[hook_id] = text
        start = readme.find("# .pre-commit-config.yaml", start + 1)
    return configs


def test_readme_configs_name_the_shipped_hooks() -> None:
    configs = readme_configs()
    assert set(configs) == set(shipped_hooks())
    for hook_id, text in configs.items():  # the local form says what the shipped one says
        (hook,) = (hook for repo in yaml.safe_load(text)["repos"] for hook in repo["hooks"])
        assert {k: v for k, v in hook.items() if k != "language"} == \
            {k: v for k, v in shipped_hooks()[hook_id].items()
             if k not in ("language", "description")}


def test_readme_build_config_works_when_copied_into_a_fresh_repository(tmp_path: Path) -> None:
    repo = Repo(tmp_path, [], config=readme_configs()["bflow-build"])
    assert repo.commits() == 1 and repo.committed("derived.txt") == "HELLO\n"
    repo.write("src.txt", "world\n")
    repo.git("add", "src.txt")
    failed = repo.commit()
    assert failed.returncode != 0 and "derived.txt" in repo.git("status", "--short")
    repo.git("add", "derived.txt")
    assert repo.commit().returncode == 0 and repo.committed("derived.txt") == "WORLD\n"


def test_readme_check_config_works_when_copied_into_a_fresh_clone(tmp_path: Path) -> None:
    clone = Repo(tmp_path, [], config=readme_configs()["bflow-check"]).clone()
    clone.write("src.txt", "world\n")
    clone.git("add", "src.txt")
    failed = clone.commit()
    assert failed.returncode != 0 and STALE in failed.stdout + failed.stderr
    assert clone.run("bflow").returncode == 0
    clone.git("add", "derived.txt")
    passed = clone.commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_the_cache_dir_keeps_itself_out_of_git(tmp_path: Path) -> None:
    """With no `.bflow/` in the project's `.gitignore`, a `git add -A` took in the records,
    and a build hook found them changed at every commit (the lock is written by every run)."""
    env = bflow_env({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    (tmp_path / "Flowfile").write_text(FLOWFILE)
    (tmp_path / "src.txt").write_text("hello\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, env=env, check=True)
    built = subprocess.run([sys.executable, "-m", "buildflow"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert sorted(status.stdout.splitlines()) == ["?? Flowfile", "?? derived.txt", "?? src.txt"]
    (tmp_path / ".bflow" / ".gitignore").write_text("mine\n")  # the user's, once there
    subprocess.run([sys.executable, "-m", "buildflow"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    assert (tmp_path / ".bflow" / ".gitignore").read_text() == "mine\n"


@pytest.mark.parametrize("hook", ["status --check --outputs", "build"])
def test_a_hook_in_a_linked_worktree_sees_the_project_below_the_top(tmp_path: Path,
                                                                      hook: str) -> None:
    """git gives a linked worktree's hooks GIT_DIR without GIT_WORK_TREE, so git run in the
    project's directory (`bflow -C apps/web`) took it for the top of the work tree: the check
    said the Flowfile was not tracked (exit 2), and the build removed a renamed output's old
    file that git tracks, which the main checkout leaves in place."""
    repo = Repo(tmp_path, [], config="repos: []\n")
    main, worktree = repo.root, tmp_path / "wt"
    web = main / "apps" / "web"
    web.mkdir(parents=True)
    (web / "Flowfile").write_text('[tasks.gen]\ncmd = "tr a-z A-Z < {input} > {output}"\n'
                                  'inputs = ["src.txt"]\noutputs = ["out.txt"]\n')
    (web / "src.txt").write_text("hello\n")
    assert repo.run("bflow", "-C", "apps/web").returncode == 0
    repo.git("add", ".")
    assert repo.commit().returncode == 0
    hook_file = main / ".git" / "hooks" / "pre-commit"
    hook_file.write_text(f"#!/bin/sh\nexec bflow -C apps/web {hook}\n")
    hook_file.chmod(0o755)
    repo.git("worktree", "add", "-q", str(worktree))
    repo.root = worktree
    assert repo.run("bflow", "-C", "apps/web").returncode == 0
    if hook == "build":  # a renamed output: the old file stays, git tracks it
        flowfile = worktree / "apps/web/Flowfile"
        flowfile.write_text(flowfile.read_text().replace("out.txt", "out2.txt"))
        repo.git("add", "apps/web/Flowfile")
    else:
        repo.write("notes.txt", "an unrelated change\n")
        repo.git("add", "notes.txt")
    committed = repo.commit()
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert (worktree / "apps/web/out.txt").read_text() == "HELLO\n"


@pytest.mark.parametrize("given", ["--git-dir and --work-tree", "core.worktree"])
def test_a_hook_of_a_repository_kept_apart_from_its_work_tree_sees_the_project_below_the_top(
        tmp_path: Path, given: str) -> None:
    """git gives the hooks of `git --git-dir=D --work-tree=W commit` GIT_WORK_TREE=., which
    bflow -C apps/web took for apps/web (the Flowfile "not tracked", exit 2), and those of a
    repository with core.worktree GIT_DIR alone, which bflow left out (no repository): a
    consistent commit was refused either way."""
    repo = Repo(tmp_path, [], config="repos: []\n")
    web = repo.root / "apps" / "web"
    web.mkdir(parents=True)
    (web / "Flowfile").write_text('[tasks.gen]\ncmd = "tr a-z A-Z < {input} > {output}"\n'
                                  'inputs = ["src.txt"]\noutputs = ["out.txt"]\n')
    (web / "src.txt").write_text("hello\n")
    assert repo.run("bflow", "-C", "apps/web").returncode == 0
    store = tmp_path / "store.git"
    (repo.root / ".git").rename(store)
    (store / "hooks" / "pre-commit").write_text(
        "#!/bin/sh\nexec bflow -C apps/web status --check --outputs\n")
    if given == "core.worktree":
        repo.run("git", f"--git-dir={store}", "config", "core.worktree", str(repo.root))
        repo.env = {**repo.env, "GIT_DIR": str(store)}
        git: tuple[str, ...] = ("git",)
    else:
        git = ("git", f"--git-dir={store}", f"--work-tree={repo.root}")
    assert repo.run(*git, "add", ".").returncode == 0
    (web / "src.txt").write_text("hello again\n")
    assert repo.run("bflow", "-C", "apps/web").returncode == 0
    assert repo.run(*git, "add", ".").returncode == 0
    committed = repo.run(*git, "commit", "-q", "-m", "consistent")
    assert committed.returncode == 0, committed.stdout + committed.stderr
    (web / "out.txt").write_text("STALE\n")  # and the hook still catches a stale output
    assert repo.run(*git, "add", ".").returncode == 0
    refused = repo.run(*git, "commit", "-q", "-m", "stale")
    assert refused.returncode == 1 and "out.txt: differs from what a build gives" in \
        refused.stdout + refused.stderr, refused.stdout + refused.stderr
