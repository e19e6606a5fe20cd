"""A webhook receiver on 127.0.0.1 (http.server in a thread), for the notification tests here and in
tests/workers/tasks/ (each wraps it in a `receiver` fixture)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 answering each POST with the next status of `statuses` (then the last one)."""

    url: str
    statuses: list[int]
    requests: list[Received] = field(default_factory=list)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state = Receiver(url="", statuses=[204])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(Received(self.path, dict(self.headers.items()), self.rfile.read(length)))
            index = min(len(state.requests), len(state.statuses)) - 1
            self.send_response(state.statuses[index])
            if 300 <= state.statuses[index] < 400:
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?team=ml"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
