"""The remote store: a server speaking Bazel's HTTP cache protocol, `GET`/`PUT` on
`<prefix>/ac/<key>` for entries and `<prefix>/cas/<sha256>` for blobs (nginx with WebDAV,
bazel-remote, hosted caches). A 404 is a miss; anything else that is not a success raises
`RemoteError`, whose message names the URL without its credentials and says what to check.
Each thread keeps its own connection (http.client's are not shared), reused across requests.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
import time
import urllib.parse

from buildflow.cache import RemoteError

# A cache that answers slowly is worse than none: the build goes on without it. Each wait
# for the server is bounded by TIMEOUT, and a whole request by TIMEOUT more than its body
# takes at SLOWEST_BYTES_PER_SECOND: a server trickling an answer out is given up too.
TIMEOUT = 5.0
SLOWEST_BYTES_PER_SECOND = 1 << 20
# A server that answers each request within TIMEOUT, but slowly, would hold every lookup of the
# build that long: once it has taken more than SLOW_ANSWER seconds to begin SLOW_ANSWERS
# answers about entries (small, so their time is the server's, not the network's), it is
# given up as a failing one is.
SLOW_ANSWER = 1.0
SLOW_ANSWERS = 3
_CHUNK = 1 << 16  # bytes sent or read at a time


class Remote:
    def __init__(self, url: str, header: str = "", timeout: float = TIMEOUT) -> None:
        self.shown = shown_url(url).rstrip("/")
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:  # "Invalid IPv6 URL": a `[` without its `]`
            raise ValueError(f"'{self.shown}' is not a URL (an unclosed '[' in its host)"
                             ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{self.shown}' is not an http:// or https:// URL")
        if "@" in url.partition("://")[2][len(parts.netloc):]:  # in what it takes for the path
            raise ValueError(f"'{self.shown}': a user or password holding '/', '?' or '#' "
                             "is written percent-encoded in the URL (%2F, %3F, %23)")
        try:
            self.port = parts.port
        except ValueError:
            raise ValueError(f"'{self.shown}': the port is not a number from 0 to 65535"
                             ) from None
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.prefix = urllib.parse.quote(parts.path.rstrip("/"), safe="/%!$&'()*+,;=:@~")
        self.timeout = timeout
        self.stopped = threading.Event()
        self.headers: dict[str, str] = {}
        if parts.username is not None:
            userinfo = f"{urllib.parse.unquote(parts.username)}:" \
                       f"{urllib.parse.unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(
                userinfo.encode()).decode()
        if header:
            name, sep, value = header.partition(":")
            if not sep or not name.strip():
                raise ValueError("BFLOW_REMOTE_CACHE_HEADER is not 'Name: value'")
            if "\r" in header or "\n" in header or not header.isascii():
                raise ValueError("BFLOW_REMOTE_CACHE_HEADER holds a line break or a character "
                                 "that is not ASCII, which no HTTP header may hold")
            self.headers[name.strip()] = value.strip()
        self._local = threading.local()
        self._lookups: set[http.client.HTTPConnection] = set()
        self._lookups_lock = threading.Lock()
        self._slow_answers = 0  # counted under _lookups_lock

    def get(self, kind: str, key: str, limit: int) -> bytes | None:
        """The body under `key`; a RemoteError once the server sends more than `limit` bytes
        (a blob's size, an entry's bound), read no further."""
        status, body = self._request("GET", kind, key, limit=limit)
        if status == 404:
            return None
        if status != 200:
            raise RemoteError(self._problem("GET", kind, key, status))
        return body

    def put(self, kind: str, key: str, data: bytes) -> None:
        status, _ = self._request("PUT", kind, key, data)
        if status not in (200, 201, 204):
            raise RemoteError(self._problem("PUT", kind, key, status))

    def _request(self, method: str, kind: str, key: str, body: bytes | None = None,
                 limit: int = 0) -> tuple[int, bytes]:
        path = f"{self.prefix}/{kind}/{key}"
        headers = {**self.headers, "Content-Length": str(len(body or b""))}
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more
            connection = self._connection()
            lookup = method == "GET"  # given up on `stop`; uploads of what ran still go
            try:
                if lookup:
                    self._looking_up(connection, True)
                asked = time.monotonic()
                self._send(connection, method, path, headers, body)
                if lookup and self.stopped.is_set():  # while it connected: no socket to shut
                    raise http.client.RemoteDisconnected("stopped")
                response = self._response(connection, body)
                if kind == "ac" and self._too_slow(time.monotonic() - asked):
                    self._drop()  # its answer unread
                    raise RemoteError(
                        f"{method} {self.shown}: the server took more than {SLOW_ANSWER:g} s "
                        f"to answer {SLOW_ANSWERS} requests; a cache that answers slowly holds "
                        "up every lookup (check the server's load and the network)")
                return response.status, self._body(response, method, kind, key, limit)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if lookup and self.stopped.is_set():  # its socket shut by `stop`
                    raise RemoteError(f"{method} {self.shown}/{kind}/{key}: stopped") from None
                if attempt == 2:
                    raise RemoteError(f"{method} {self.shown}/{kind}/{key}: the server closed "
                                      f"the connection ({exc}); is it overloaded?") from None
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop()
                raise RemoteError(f"{method} {self.shown}/{kind}/{key}: {_describe(exc)}; "
                                  "check that the server runs and the URL is right "
                                  "(BFLOW_REMOTE_CACHE or settings.remote_cache)") from None
            finally:
                if lookup:
                    self._looking_up(connection, False)
        raise AssertionError("unreachable")

    def _too_slow(self, seconds: float) -> bool:
        """Whether an answer about an entry that took `seconds` to begin is the
        SLOW_ANSWERS-th to take more than SLOW_ANSWER: then the server is given up."""
        if seconds <= SLOW_ANSWER:
            return False
        with self._lookups_lock:
            self._slow_answers += 1
            return self._slow_answers == SLOW_ANSWERS

    def _looking_up(self, connection: http.client.HTTPConnection, started: bool) -> None:
        """Keep the connections of the lookups in progress, for `stop` to shut; one that
        starts after `stop` is given up at once."""
        with self._lookups_lock:
            if started:
                if self.stopped.is_set():
                    raise http.client.RemoteDisconnected("stopped")
                self._lookups.add(connection)
            else:
                self._lookups.discard(connection)

    def _response(self, connection: http.client.HTTPConnection,
                  body: bytes | None) -> http.client.HTTPResponse:
        """The answer's head. After a body, the server may still be reading what the socket's
        buffers held when the last chunk left: its answer may take that long more."""
        if not body or connection.sock is None:
            return connection.getresponse()
        connection.sock.settimeout(self.timeout + len(body) / SLOWEST_BYTES_PER_SECOND)
        try:
            return connection.getresponse()
        finally:
            if connection.sock is not None:
                connection.sock.settimeout(self.timeout)

    def _send(self, connection: http.client.HTTPConnection, method: str, path: str,
              headers: dict[str, str], body: bytes | None) -> None:
        """The request, its body in chunks: each waits for the server up to the timeout, the
        whole body as long as its size takes at SLOWEST_BYTES_PER_SECOND (one `sendall` of it
        had the timeout for all of it: an upload longer than 5 s was taken for a dead
        server)."""
        connection.putrequest(method, path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        if not body:
            return
        deadline = time.monotonic() + self.timeout + len(body) / SLOWEST_BYTES_PER_SECOND
        view = memoryview(body)
        for start in range(0, len(body), _CHUNK):
            connection.send(view[start:start + _CHUNK])
            if time.monotonic() > deadline:
                raise TimeoutError("the upload went too slowly")

    def _body(self, response: http.client.HTTPResponse, method: str, kind: str,
              key: str, limit: int) -> bytes:
        """The response's body, read in chunks, so that a server trickling it out is given
        up once the request has taken longer than its size allows (a TimeoutError), one
        sending more than `limit` bytes as soon as it does, and a `stop` ends the wait for a
        lookup."""
        size = int(response.getheader("Content-Length") or 0)
        limit = max(limit, _CHUNK)  # what a refusal or an error page may say
        if size > limit:
            self._drop()
            raise RemoteError(f"{method} {self.shown}/{kind}/{key}: {size} bytes where at "
                              f"most {limit} were asked for; another service at that URL?")
        deadline = time.monotonic() + self.timeout + size / SLOWEST_BYTES_PER_SECOND
        chunks = []
        read = 0
        while True:
            chunk = response.read1(_CHUNK)
            if method == "GET" and self.stopped.is_set():  # uploads of what ran still go; a
                self._drop()  # lookup's socket shut by `stop` ends the body short
                raise RemoteError(f"{method} {self.shown}/{kind}/{key}: stopped")
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
            if read > limit:
                self._drop()
                raise RemoteError(f"{method} {self.shown}/{kind}/{key}: more than the {limit} "
                                  "bytes asked for; another service at that URL?")
            if time.monotonic() > deadline:
                raise TimeoutError("the answer came too slowly")
        response.read()  # at the end: lets the connection take the next request
        return b"".join(chunks)

    def stop(self) -> None:
        """Give up the lookups in progress: the build was interrupted (what ran is still
        uploaded). Their sockets are shut, which ends a wait for a server that answers
        nothing at once, not after its timeout."""
        with self._lookups_lock:
            self.stopped.set()
            for connection in self._lookups:
                if connection.sock is not None:
                    try:
                        connection.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:  # closed meanwhile
                        pass

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            connection = self._local.connection = kind(self.host, self.port,
                                                       timeout=self.timeout)
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def close(self) -> None:
        """Close the calling thread's connection."""
        self._drop()

    def _problem(self, method: str, kind: str, key: str, status: int) -> str:
        where = f"{method} {self.shown}/{kind}/{key}: HTTP {status}"
        if status in (401, 403):
            return (f"{where}; check the credentials (the user and password in "
                    "BFLOW_REMOTE_CACHE's URL, or BFLOW_REMOTE_CACHE_HEADER)")
        if method == "PUT" and status == 405:
            return (f"{where}; the server does not take uploads (nginx: `dav_methods PUT;`), "
                    "or set BFLOW_REMOTE_CACHE_UPLOAD=0 to only read from it")
        if method == "PUT" and kind == "ac" and status == 400:
            return (f"{where}; bazel-remote takes bflow's entries only with "
                    "--disable_http_ac_validation")
        return f"{where}; check the server's log"


def shown_url(url: str) -> str:
    """`url` without its userinfo: what messages may print. All before the last `@` after the
    scheme counts as userinfo, also where a password holds a `/`, `?` or `#` written as it is
    (the URL's parser then takes the rest of it for the path). Without `://` (a scheme
    mistyped, `http:/me:pw@host`, or none), all before the last `@` is shown as `***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"***@{url.rpartition('@')[2]}" if "@" in url else url
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return str(exc) or "no answer in time"
    if isinstance(exc, ValueError):  # never its text, which may hold a credential
        return "a request HTTP cannot carry (a header or a path that is not ASCII)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.HTTPException):  # its text is what the server sent, raw
        return f"no HTTP answer ({type(exc).__name__})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
