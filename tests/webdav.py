"""An nginx serving WebDAV PUT behind basic auth on 127.0.0.1: the remote output cache of the
tests and of the cache benchmark, started with a configuration in a directory of its own."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER, PASSWORD = "builder", "s3cret-pass"


class Server:
    def __init__(self, root: Path, port: int, user: str, password: str) -> None:
        self.data = root / "data"
        self.port = port
        self.user, self.password = user, password

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The cache's URL under /bflow, with credentials (these, or the right ones)."""
        return (f"http://{user or self.user}:{password or self.password}"
                f"@127.0.0.1:{self.port}/bflow")

    def files(self, kind: str) -> list[Path]:
        return sorted((self.data / "bflow" / kind).glob("*"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ssha(password: str) -> str:
    """An htpasswd entry nginx reads: {SSHA} is base64(SHA-1(password + salt) + salt)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@contextmanager
def serve(root: Path, user: str = USER, password: str = PASSWORD) -> Iterator[Server]:
    """nginx serving `root`/data, stopped when the block ends. Fails (never skips) without
    nginx: the remote cache would go untested."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
    assert nginx, "nginx is not installed (apt-get install nginx); .ci/run installs it"
    found = Server(root, free_port(), user, password)
    found.data.mkdir(parents=True)
    (root / "htpasswd").write_text(f"{user}:{_ssha(password)}\n")
    workers = "user root;" if os.geteuid() == 0 else ""  # to reach the private temp dirs
    (root / "nginx.conf").write_text(f"""
        {workers}
        daemon off;
        worker_processes 1;
        pid {root}/nginx.pid;
        error_log {root}/error.log;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {root}/body;
            proxy_temp_path {root}/proxy;
            fastcgi_temp_path {root}/fastcgi;
            uwsgi_temp_path {root}/uwsgi;
            scgi_temp_path {root}/scgi;
            server {{
                listen 127.0.0.1:{found.port};
                root {found.data};
                client_max_body_size 0;
                location /bflow/ {{
                    auth_basic "cache";
                    auth_basic_user_file {root}/htpasswd;
                    dav_methods PUT;
                    create_full_put_path on;
                }}
            }}
        }}
        """)
    process = subprocess.Popen([nginx, "-c", str(root / "nginx.conf"), "-p", str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", found.port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield found
    finally:
        process.terminate()
        process.wait(timeout=10)
