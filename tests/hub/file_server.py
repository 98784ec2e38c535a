"""A local HTTP server of one folder for download tests: byte ranges, a first answer cut short,
a slow transfer, and a log of the requests it answered."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Behaviour:
    cut_first_after: int | None = None  # the first answer stops after this many bytes
    seconds_per_chunk: float = 0.0  # slows every answer (concurrency tests)
    content_type: str = "application/octet-stream"
    requests: list[dict] = field(default_factory=list)


def serve(folder: Path, behaviour: Behaviour) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a server of ``folder`` on 127.0.0.1; returns it and its base URL (shut it down after)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = folder / self.path.lstrip("/")
            behaviour.requests.append({"path": self.path, "range": self.headers.get("Range")})
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged[len("bytes=") :].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", behaviour.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if behaviour.cut_first_after is not None and len(behaviour.requests) == 1:
                body = body[: behaviour.cut_first_after]  # promised more: the client sees a short read
            for i in range(0, len(body), 1 << 16):
                self.wfile.write(body[i : i + (1 << 16)])
                if behaviour.seconds_per_chunk:
                    time.sleep(behaviour.seconds_per_chunk)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
