"""The remote output cache against a real server: nginx with WebDAV PUT behind basic auth,
started on 127.0.0.1 for each test, speaking Bazel's HTTP cache protocol (`/ac/`, `/cas/`).

nginx is installed by `.ci/run`; without it these tests fail rather than skip, since the
remote cache would then go untested.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from buildflow.cache import RemoteError
from buildflow.cache.remote import Remote
from conftest import Project, bflow_env
from test_cache import FLOW
from webdav import PASSWORD, USER, Server, free_port, serve

pytestmark = pytest.mark.output_cache



@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("nginx"), USER, PASSWORD) as found:
        yield found


def started(project: Project) -> Project:
    project.flowfile(FLOW)
    project.write("src/a.txt", "a\n")
    project.write("src/b.txt", "b\n")
    return project


def build(project: Project, env: dict[str, str]) -> tuple[list[str], list[str], str]:
    """(tasks run, tasks restored, stderr) of a `bflow --json` build that must succeed."""
    before = len(project.runs())
    result = project.bflow("--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    restored = [e["task"] for e in map(json.loads, result.stdout.splitlines())
                if e["event"] == "task_restored"]
    assert PASSWORD not in result.stdout + result.stderr
    return sorted(project.runs()[before:]), sorted(restored), result.stderr


def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, str]]:
    """A second checkout in another directory, with a local cache of its own, empty."""
    clone = started(Project(tmp_path_factory.mktemp("clone")))
    return clone, {"BFLOW_CACHE_DIR": str(tmp_path_factory.mktemp("clone-cache"))}


EVERYTHING = ["join", "shout:src/a.txt", "shout:src/b.txt"]


def test_a_second_clone_with_an_empty_local_cache_restores_from_the_server(
        project: Project, server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    started(project)
    ran, _, stderr = build(project, {"BFLOW_REMOTE_CACHE": server.url()})
    assert ran == ["a", "b", "join"] and stderr == ""
    assert len(server.files("ac")) == 3 and len(server.files("cas")) == 5  # 3 outputs, 2 logs
    clone, env = fresh_clone(tmp_path_factory)
    ran, restored, stderr = build(clone, {**env, "BFLOW_REMOTE_CACHE": server.url()})
    assert ran == [] and restored == EVERYTHING and stderr == ""
    assert clone.read("site.txt") == project.read("site.txt") == "A\nB\n"
    assert "shouting a" in clone.bflow("log", "shout:src/a.txt").stdout
    assert build(clone, env)[:2] == ([], [])


def test_a_header_gives_the_credentials_as_well(
        project: Project, server: Server) -> None:
    started(project)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    env = {"BFLOW_REMOTE_CACHE": f"http://127.0.0.1:{server.port}/bflow",
           "BFLOW_REMOTE_CACHE_HEADER": f"Authorization: Basic {token}"}
    assert build(project, env)[2] == ""
    assert len(server.files("ac")) == 3


def test_read_only_mode_reads_and_never_writes(
        project: Project, server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    started(project)
    build(project, {"BFLOW_REMOTE_CACHE": server.url(), "BFLOW_REMOTE_CACHE_UPLOAD": "0"})
    assert server.files("ac") == [] and server.files("cas") == []
    project.write("src/c.txt", "c\n")  # CI builds more, and uploads it
    build(project, {"BFLOW_REMOTE_CACHE": server.url()})
    clone, env = fresh_clone(tmp_path_factory)
    clone.write("src/c.txt", "c\n")
    clone.flowfile(FLOW + "\n[settings]\nremote_cache_upload = false\n")
    listing = server.files("cas")
    ran, restored, _ = build(clone, {**env, "BFLOW_REMOTE_CACHE": server.url()})
    assert ran == ["a", "b"] and restored == ["join", "shout:src/c.txt"]  # a, b: not uploaded
    clone.write("src/d.txt", "d\n")
    ran, _, stderr = build(clone, {**env, "BFLOW_REMOTE_CACHE": server.url()})
    assert ran == ["d", "join"] and stderr == ""
    assert server.files("cas") == listing


def test_a_poisoned_blob_is_a_miss_with_one_warning_and_the_task_runs(
        project: Project, server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    started(project)
    build(project, {"BFLOW_REMOTE_CACHE": server.url()})
    poisoned = hashlib.sha256(b"A\n").hexdigest()
    (server.data / "bflow" / "cas" / poisoned).write_bytes(b"EVIL\n")
    clone, env = fresh_clone(tmp_path_factory)
    ran, restored, stderr = build(clone, {**env, "BFLOW_REMOTE_CACHE": server.url()})
    assert ran == ["a"] and restored == ["join", "shout:src/b.txt"]
    assert clone.read("build/a.out") == "A\n" and clone.read("site.txt") == "A\nB\n"
    assert stderr.count("warning") == 1 and poisoned in stderr, stderr
    assert f"127.0.0.1:{server.port}/bflow/cas" in stderr


def test_an_entry_a_server_gives_under_another_key_is_a_miss_with_one_warning(
        project: Project, server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A stale or misrouted answer: the entry `shout:src/a.txt` stored when a.txt held "a",
    whole and well formed, sent for the key of a.txt holding "x". It was restored, and kept
    in the local cache, so the clone built "A" where its source says "x"."""
    started(project)
    env = {"BFLOW_REMOTE_CACHE": server.url()}
    build(project, env)
    store = server.data / "bflow" / "ac"
    first = {path: path.read_bytes() for path in store.iterdir()}
    project.write("src/a.txt", "x\n")
    build(project, env)
    shout_a = [data for data in first.values() if b'"build/a.out"' in data]
    for path in store.iterdir():
        if path not in first and b'"build/a.out"' in path.read_bytes():
            path.write_bytes(shout_a[0])
    clone, clone_env = fresh_clone(tmp_path_factory)
    clone.write("src/a.txt", "x\n")
    ran, restored, stderr = build(clone, {**clone_env, **env})
    assert "a" in ran and "shout:src/a.txt" not in restored
    assert clone.read("build/a.out") == "X\n" and clone.read("site.txt") == "X\nB\n"
    assert stderr.count("warning") == 1 and "stored under another key" in stderr, stderr

@pytest.mark.parametrize("fault", ["down", "wrong password", "refusing"])
def test_a_server_that_cannot_be_used_is_a_miss_with_one_warning(
        project: Project, server: Server, fault: str) -> None:
    started(project)
    url = {"down": f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/bflow",
           "wrong password": server.url(password="wrong-pass"),
           "refusing": f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/nothing-here"}[fault]
    begun = time.monotonic()
    ran, restored, stderr = build(project, {"BFLOW_REMOTE_CACHE": url})
    assert time.monotonic() - begun < 20
    assert ran == ["a", "b", "join"] and restored == []
    assert stderr.count("warning") == 1, stderr
    assert "127.0.0.1:" in stderr and "wrong-pass" not in stderr
    if fault == "wrong password":
        assert "HTTP 401" in stderr and "credentials" in stderr
    assert project.read("site.txt") == "A\nB\n"
    assert project.bflow("clean").returncode == 0
    assert build(project, {"BFLOW_REMOTE_CACHE": url})[0] == []  # the local cache still works


@pytest.mark.parametrize("password", ["Sup3r/Secret", "Sup3r#Secret", "Sup3r?Secret", "123/abc"])
def test_a_password_written_without_its_escapes_is_never_printed(
        project: Project, password: str) -> None:
    # `/`, `#` and `?` end the part of a URL that holds the user and password: written as
    # they are, the parser takes the rest for the path (or the port), which messages show
    started(project)
    url = f"http://{USER}:{password}@127.0.0.1:{free_port()}/bflow"
    result = project.bflow("--json", env={"BFLOW_REMOTE_CACHE": url})
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "Secret" not in said and "abc" not in said and USER not in said
    assert "remote cache not used" in result.stderr and "percent-encoded" in result.stderr
    assert sorted(project.runs()) == ["a", "b", "join"]


@pytest.mark.parametrize("url, problem", [
    ("http://me:pw@[::1/bflow", "'http://[::1/bflow' is not a URL (an unclosed '[' in its host)"),
    ("http://127.0.0.1:99999/bflow", "the port is not a number from 0 to 65535"),
    # a scheme mistyped, or none: the password was printed with the rest
    ("http:/me:pw@cache.example/bflow", "'***@cache.example/bflow' is not an http://"),
    ("me:pw@cache.example/bflow", "'***@cache.example/bflow' is not an http://")])
def test_a_url_that_cannot_be_used_names_where_it_comes_from(project: Project, url: str,
                                                              problem: str) -> None:
    # "Invalid IPv6 URL", naming neither the variable nor the URL; 99999 "not a number"
    started(project)
    result = project.bflow("--plain", env={"BFLOW_REMOTE_CACHE": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: remote cache not used: BFLOW_REMOTE_CACHE: " in result.stderr
    assert problem in result.stderr and "pw" not in result.stderr


def test_what_a_build_fetches_is_bounded_as_what_it_stores(
        project: Project, server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    # CI fills the server; a laptop only reads it, into a small local cache
    big = """
        [tasks.big]
        foreach = "src/*.txt"
        cmd = "echo {stem} >> runs.log && head -c 20000 /dev/zero | tr '\\\\0' {stem} > {output}"
        outputs = ["out/{stem}.bin"]
        """
    project.flowfile(big)
    for name in "abcdef":
        project.write(f"src/{name}.txt", name)
    assert len(build(project, {"BFLOW_REMOTE_CACHE": server.url()})[0]) == 6
    laptop = Project(tmp_path_factory.mktemp("laptop"))
    laptop.flowfile(big)
    for name in "abcdef":
        laptop.write(f"src/{name}.txt", name)
    local = tmp_path_factory.mktemp("laptop-cache")
    env = {"BFLOW_CACHE_DIR": str(local), "BFLOW_CACHE_MAX": "50K",
           "BFLOW_REMOTE_CACHE": server.url(), "BFLOW_REMOTE_CACHE_UPLOAD": "0"}
    ran, restored, _ = build(laptop, env)
    assert ran == [] and len(restored) == 6
    assert sum(p.stat().st_size for p in local.rglob("*") if p.is_file()) <= 50 * 1024


class _Server:
    """A server on 127.0.0.1, listening on `listener`, that answers each connection on a
    thread of its own (`_answer`)."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/bflow"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class Answering(_Server):
    """A server that answers every request 200 with `body`, a byte every `pause` seconds
    (with `misses`, a GET 404 and a PUT 201 with a body), each after `delay` seconds: the slow
    or wrong server that nginx cannot play."""

    def __init__(self, body: bytes, pause: float = 0.0, misses: bool = False,
                 silent: bool = False, delay: float = 0.0) -> None:
        self.body, self.pause, self.misses, self.silent = body, pause, misses, silent
        self.delay = delay
        self.puts: list[str] = []
        self.gets: list[str] = []
        self.asked = threading.Event()  # set once a request has come
        super().__init__(socket.create_server(("127.0.0.1", 0)))

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                request = connection.recv(65536)
                self.asked.set()
                time.sleep(self.delay)
                if self.silent:  # takes the request, answers nothing, holds the connection
                    connection.recv(1)
                    return
                if self.misses:
                    method, path = request.split(b" ", 2)[:2]
                    (self.puts if method == b"PUT" else self.gets).append(path.decode())
                    status = b"201 Created" if method == b"PUT" else b"404 Not Found"
                    connection.sendall(b"HTTP/1.1 %s\r\nContent-Length: 7\r\n"
                                       b"Connection: close\r\n\r\n" % status)
                    for byte in b"stored\n":
                        time.sleep(self.pause)
                        connection.sendall(bytes([byte]))
                    return
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                                   % len(self.body))
                for byte in self.body if self.pause else [self.body]:
                    time.sleep(self.pause)
                    connection.sendall(bytes([byte]) if self.pause else self.body)
            except OSError:  # bflow gave up
                pass


def test_a_server_that_trickles_its_answer_out_is_given_up(project: Project) -> None:
    # each read came within the timeout, so a byte a second held the build for the whole body
    started(project)
    server = Answering(b"x" * 60, pause=1.0)
    try:
        begun = time.monotonic()
        ran, restored, stderr = build(project, {"BFLOW_REMOTE_CACHE": server.url})
        assert time.monotonic() - begun < 30
        assert ran == ["a", "b", "join"] and restored == []
        assert stderr.count("warning") == 1 and "too slowly" in stderr, stderr
        project.write("src/a.txt", "a2\n")
        server.asked.clear()
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                                   cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=bflow_env({"BFLOW_REMOTE_CACHE": server.url}), text=True)
        assert server.asked.wait(30)  # in the lookup, answered a byte a second
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, out + err
        assert time.monotonic() - interrupted < 4  # the lookup is given up, not waited out
        assert "warning" not in err
    finally:
        server.close()


def test_a_server_that_answers_each_request_slowly_is_given_up(project: Project) -> None:
    # each answer came within the timeout, so the server held every lookup of the build 1.5 s
    started(project)
    for stem in "cdefgh":
        project.write(f"src/{stem}.txt", f"{stem}\n")
    server = Answering(b"", misses=True, delay=1.5)
    try:
        ran, restored, stderr = build(project, {"BFLOW_REMOTE_CACHE": server.url})
        assert ran == sorted(["join", *"abcdefgh"]) and restored == []
        assert stderr.count("warning") == 1 and "answers slowly" in stderr, stderr
        # the third slow answer gives the server up (the other worker's lookup and an upload
        # may be on their way): else each task's lookup and upload, 18
        entries = [path for path in [*server.gets, *server.puts] if "/ac/" in path]
        assert len(entries) <= 5, entries
    finally:
        server.close()


def test_ctrl_c_gives_up_a_lookup_a_server_never_answers_at_once(project: Project) -> None:
    """The wait for the answer's first byte was cut short only by the 5 s timeout."""
    started(project)
    server = Answering(b"", silent=True)
    try:
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain"],
                                   cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=bflow_env({"BFLOW_REMOTE_CACHE": server.url}), text=True)
        assert server.asked.wait(30)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, out + err
        assert time.monotonic() - interrupted < 3  # not the 5 s of the timeout
        assert "warning" not in err
        # the lookups given up as misses started no command: Ctrl-C starts nothing new
        assert project.runs() == [] and "run " not in out
    finally:
        server.close()


def test_a_failure_as_a_lookup_waits_leaves_its_task_unstarted(project: Project) -> None:
    """On a failure no new task starts: the task whose lookup a silent server held ran
    once the lookup timed out, after the other had failed."""
    project.flowfile('[tasks.bad]\ncmd = "echo bad >> runs.log; exit 1"\ncache = false\n'
                     '[tasks.slow]\ncmd = "echo slow >> runs.log; echo s > s.txt"\n'
                     'outputs = ["s.txt"]\n')
    server = Answering(b"", silent=True)
    try:
        result = project.bflow("-j2", "--json", env={"BFLOW_REMOTE_CACHE": server.url})
        assert result.returncode == 1
        assert project.runs() == ["bad"]
        events = {e["task"]: e for e in map(json.loads, result.stdout.splitlines())
                  if "task" in e}
        assert events["slow"]["event"] == "task_skipped", events
    finally:
        server.close()

def test_what_a_server_sends_that_is_no_entry_is_said_of_the_server(project: Project) -> None:
    # it was said of the local copy, "the damaged file was removed", and the server kept
    started(project)
    server = Answering(b"<html>Welcome to nginx!</html>")
    try:
        ran, restored, stderr = build(project, {"BFLOW_REMOTE_CACHE": server.url})
    finally:
        server.close()
    assert ran == ["a", "b", "join"] and restored == []
    assert stderr.count("warning") == 1 and f"{server.url}/ac/" in stderr, stderr
    assert "holds no entry bflow wrote" in stderr and "damaged file was removed" not in stderr


@pytest.mark.parametrize("setting", ["header with a line break", "header not ASCII",
                                     "path not ASCII"])
def test_what_http_cannot_carry_is_a_miss_with_one_warning_never_showing_the_header(
        project: Project, setting: str) -> None:
    # each was an internal error (exit 3), the first printing the token
    started(project)
    url = f"http://127.0.0.1:{free_port()}/bflow"
    env = {"header with a line break": {"BFLOW_REMOTE_CACHE_HEADER": "Authorization: Bearer "
                                                                     "SEKRIT\nX-Other: y"},
           "header not ASCII": {"BFLOW_REMOTE_CACHE_HEADER": "Authorization: SEKRIT\u20ac"},
           "path not ASCII": {}}[setting]
    if setting == "path not ASCII":
        url += "/cach\u00e9"
    ran, restored, stderr = build(project, {"BFLOW_REMOTE_CACHE": url, **env})
    assert ran == ["a", "b", "join"] and restored == []
    assert stderr.count("warning") == 1 and "SEKRIT" not in stderr, stderr


def test_what_ran_before_ctrl_c_is_still_uploaded(project: Project) -> None:
    # Ctrl-C gave up the uploads in progress too ("PUT ...: stopped"): the blob went, the
    # entry naming it never did
    project.flowfile("""
        [tasks.quick]
        cmd = "echo q > {output}"
        outputs = ["q.txt"]
        [tasks.slow]
        cmd = "echo started > slow.started; sleep 30"
        deps = ["quick"]
        """)
    server = Answering(b"", pause=0.2, misses=True)  # each answer takes 1.4 s
    try:
        process = subprocess.Popen([sys.executable, "-m", "buildflow", "--plain", "-j1"],
                                   cwd=project.root, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env=bflow_env({"BFLOW_REMOTE_CACHE": server.url}))
        deadline = time.monotonic() + 30
        while not (project.root / "slow.started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        server.close()
    assert process.returncode == 130, out + err
    assert "warning" not in err, err
    assert any("/ac/" in path for path in server.puts), server.puts


class Reading(_Server):
    """A server that reads what it is sent `chunk` bytes at a time, `pause` seconds apart,
    then answers `answer`: a slow link, or a service that answers a GET with far more than
    was asked."""

    def __init__(self, answer: bytes, chunk: int = 1 << 16, pause: float = 0.0) -> None:
        self.answer, self.chunk, self.pause = answer, chunk, pause
        self.received = 0  # of the last request
        listener = socket.socket()
        # a small receive buffer, so that what it has not read holds the sender back
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        super().__init__(listener)

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += connection.recv(1)
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                self.received = 0
                while self.received < length:
                    time.sleep(self.pause)
                    self.received += len(connection.recv(min(self.chunk, length - self.received)))
                connection.sendall(self.answer)
            except OSError:  # bflow gave up
                pass


def test_an_upload_longer_than_the_timeout_goes_on_while_the_server_takes_it() -> None:
    """One `sendall` of the body had the timeout for all of it: a 30 MB output sent to a
    server taking 4 MiB/s was taken for a dead server, and nothing more was uploaded."""
    server = Reading(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", pause=0.01)
    try:
        body = b"x" * (8 << 20)  # at 64 KiB each 10 ms: over a second, past the timeout
        Remote(server.url, timeout=0.3).put("cas", "k" * 64, body)
        assert server.received == len(body)
    finally:
        server.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 314572800\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * (3 << 20)])
def test_an_answer_longer_than_asked_for_is_given_up_unread(answer: bytes) -> None:
    """A 300 MiB answer to an entry's lookup was read whole into memory (and stored),
    before it was found to be no entry."""
    server = Reading(answer)
    try:
        with pytest.raises(RemoteError, match="asked for"):
            Remote(server.url).get("cas", "k" * 64, 1 << 20)
    finally:
        server.close()


def test_what_a_server_that_speaks_no_http_sends_is_never_printed(project: Project) -> None:
    """Its status line was printed as it came, escape codes and all: a screen cleared, a
    line of the server's making in red."""
    started(project)
    server = Reading(b"\x1b[2J\x1b[31mFAKE: all tests passed\r\n\r\n")
    try:
        result = project.bflow("--plain", env={"BFLOW_REMOTE_CACHE": server.url})
        assert result.returncode == 0, result.stderr
        assert "no HTTP answer (BadStatusLine)" in result.stderr
        assert "\x1b" not in result.stderr and "FAKE" not in result.stderr
    finally:
        server.close()
