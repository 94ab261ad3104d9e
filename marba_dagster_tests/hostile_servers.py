"""Hostile HTTP servers on loopback, speaking raw sockets (what no ASGI server can do).

``HostileServer(mode)`` accepts connections on a free port and, for every request:

``drip_headers``  sends ``HTTP/1.1 200 OK\\r\\nX-Slow: `` and then one byte every
                  ``interval`` seconds, forever: the headers never end;
``drip_body``     sends complete headers (with a Content-Length) and then the body one byte
                  every ``interval`` seconds;
``silent``        reads the request and never answers (the connection stays open);
``echo_error``    answers ``status`` with a JSON error whose message echoes the request line,
                  headers and body (an API that quotes what it was sent).

Each connection has its own thread, which ends when the client goes away or the server
stops. ``server.requests`` counts the requests received.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time


class HostileServer:
    def __init__(self, mode: str, *, interval: float = 0.5, status: int = 400) -> None:
        if mode not in ("drip_headers", "drip_body", "silent", "echo_error"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.interval = interval
        self.status = status
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        with contextlib.suppress(OSError):
            self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _read_request(self, conn: socket.socket) -> bytes | None:
        conn.settimeout(0.2)
        data = b""
        while b"\r\n\r\n" not in data:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        while len(body) < length and not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _drip(self, conn: socket.socket, prefix: bytes, drip: bytes) -> None:
        conn.sendall(prefix)
        index = 0
        while not self._stop.is_set():
            time.sleep(self.interval)
            conn.sendall(drip[index % len(drip) : index % len(drip) + 1])
            index += 1

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = self._read_request(conn)
            if request is None:
                return
            self.requests += 1
            if self.mode == "drip_headers":
                self._drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"abcdefghij")
            elif self.mode == "drip_body":
                self._drip(
                    conn,
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n",
                    b" ",
                )
            elif self.mode == "silent":
                while not self._stop.is_set():
                    time.sleep(0.1)
            else:
                text = request.decode("utf-8", errors="replace")
                body = json.dumps({"error": {"message": f"bad request: {text}"}}).encode()
                conn.sendall(
                    f"HTTP/1.1 {self.status} Error\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
