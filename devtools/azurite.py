"""Start and stop Azurite (the npm package, installed by ``make``) for the runner and the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.stores.devstorage import azurite_connection_string

ROOT = Path(__file__).resolve().parent.parent


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise FileNotFoundError("Azurite is not installed: run `make install` (it runs `npm install` for you)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Azurite:
    """One in-memory Azurite process: blob, queue and table on the given ports."""

    blob_port: int = 10000
    queue_port: int = 10001
    table_port: int = 10002
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _workdir: str | None = field(default=None, repr=False)

    @classmethod
    def on_free_ports(cls) -> Azurite:
        return cls(free_port(), free_port(), free_port())

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(blob=self.blob_port, queue=self.queue_port, table=self.table_port)

    def start(self, timeout: float = 30.0) -> Azurite:
        # Azurite writes a debug/extent folder in its cwd even in memory mode: keep it out of the repo.
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        self.process = subprocess.Popen(
            [
                azurite_binary(),
                "--silent",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(self.queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.table_port),
            ],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {err.strip()}")
            if all(port_open(p) for p in (self.blob_port, self.queue_port, self.table_port)):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Azurite did not open its ports within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            # Azurite waits for idle keep-alive connections to close before it exits;
            # in memory there is nothing to flush, so do not wait long for it.
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
