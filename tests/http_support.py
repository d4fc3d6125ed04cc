"""A trap: an HTTP server on its own port that records whatever reaches it, to prove that nothing did."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

#: What the trap answers: a page with one event, which must never end up on a queue.
POISON_EVENT: Final = {
    "specversion": "1.0",
    "id": "from-the-trap",
    "type": "dialogporten.dialog.created.v1",
    "source": "https://trap.example/dialogporten/api/v1/enduser/dialogs/0194cbe2-6c4b-7a44-94a4-c3c8f26a2f1e",
    "resource": "urn:altinn:resource:super-simple-service",
}


class Trap:
    """An HTTP server on its own port that records what reaches it and answers with a page of events."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                trap.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                body = json.dumps([POISON_EVENT]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Trap:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
