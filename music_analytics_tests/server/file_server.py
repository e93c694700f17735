"""A real local HTTP server for the append-from-URL tests: files by path, plus odd answers.

`/redirect-other/<path>` redirects to the same path on `localhost` (another host name),
`/redirect-same/<path>` to the path on this host, `/slow` sends a byte every 0.2 s for a
minute, `/big` claims nothing and sends 2 MB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def file_server(files: dict[str, bytes]) -> Iterator[str]:
    """Serve `files` ({"/name": bytes}) on 127.0.0.1 and a free port; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            port = self.server.server_address[1]
            if self.path.startswith("/redirect-other/"):
                target = f"http://localhost:{port}/" + self.path.split("/", 2)[2]
                return self._redirect(target)
            if self.path.startswith("/redirect-same/"):
                return self._redirect("/" + self.path.split("/", 2)[2])
            if self.path == "/slow":
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(300):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass
                return None
            if self.path == "/big":
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(32):
                        self.wfile.write(b"y" * 65536)
                except OSError:
                    pass
                return None
            body = files.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
