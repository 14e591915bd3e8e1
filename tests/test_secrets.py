"""Secret-looking env values reach commands unchanged but never appear in what bflow prints or
saves: -v, failure reports, --json, logs."""

from __future__ import annotations

from buildflow.secrets import MASK, Masker, is_secret_key
from conftest import Project

SECRET = "hunter2-very-secret"
FLOW = f"""
[settings]
env = {{ API_TOKEN = "{SECRET}" }}
[tasks.leaky]
cmd = "printenv API_TOKEN > received.txt; echo token is {SECRET}; exit 1"
"""


def test_secret_keys() -> None:
    for key in ("API_TOKEN", "db_password", "Secret", "AWS_ACCESS_KEY_ID", "GIT_CREDENTIALS",
                "PASSWD"):
        assert is_secret_key(key)
    assert not is_secret_key("PATH")


def test_masker_masks_the_longest_secret_whole() -> None:
    mask = Masker([("TOKEN", "abc"), ("MY_KEY", "abcdef"), ("NAME", "abcdefgh")])
    assert mask("abcdefgh abcdef abc") == f"{MASK}gh {MASK} {MASK}"
    assert not Masker([("NAME", "visible")])


def test_secret_is_never_printed_nor_saved(project: Project) -> None:
    project.flowfile(FLOW)
    verbose = project.bflow("-v")
    assert verbose.returncode == 1
    assert project.read("received.txt").strip() == SECRET  # the command got it unchanged
    as_json = project.bflow("--json")
    log = project.bflow("log", "leaky")
    for text in (verbose.stdout, verbose.stderr, as_json.stdout, log.stdout):
        assert SECRET not in text
    assert f"echo token is {MASK}; exit 1" in verbose.stdout  # the -v command and the report
    assert f"token is {MASK}" in log.stdout
    saved = b"".join(p.read_bytes() for p in (project.root / ".bflow" / "logs").iterdir())
    assert SECRET.encode() not in saved and b"token is ***" in saved


def test_a_secret_taken_from_bflow_s_environment_is_masked_too(project: Project) -> None:
    # `{env.GH_TOKEN}` put the token into the command text, which -v, -n, --json and the
    # failure report printed whole
    project.flowfile("""
        [tasks.leaky]
        cmd = "printenv GH_TOKEN > received.txt; echo token is {env.GH_TOKEN}; exit 1"
        [tasks.other]
        cmd = "echo {env.GH_TOKEN:-none} {env.LANG_TOKEN:-none} > other.txt"
        """)
    env = {"GH_TOKEN": SECRET}
    texts = []
    for args in (("-v",), ("--json",), ("-n",), ("log", "leaky")):
        result = project.bflow(*args, env=env)
        texts += [result.stdout, result.stderr]
    assert project.read("received.txt").strip() == SECRET
    assert project.read("other.txt") == f"{SECRET} none\n"
    assert all(SECRET not in text for text in texts)
    assert f"echo token is {MASK}; exit 1" in texts[0]
