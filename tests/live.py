"""The real ASGI server (uvicorn) on a socket, in its own process, on the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgresql://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server or worker process sharing the test database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTREAM_", "TEST_", "PYTEST"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "gpuniq_site.settings",
            "DATABASE_URL": test_database_url(),
            "GPUNIQ_VAR_DIR": str(settings.VAR_DIR),
            "SECRET_KEY": settings.SECRET_KEY,
            "DB_CONN_MAX_AGE": "60",
            "GPUNIQ_SANDBOX": "0",
            # a test session runs several servers and workers at once; PostgreSQL allows ~100 sessions
            "DB_POOL_MAX": "6",
        }
    )
    env.pop("CELERY_BROKER_URL", None)
    if settings.HAS_REDIS:
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env.update(extra or {})
    return env


class Worker:
    """A real Celery worker process (threads pool) on the same broker, database and Redis."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        concurrency: int = 4,
        name: str = "w1",
        args: tuple[str, ...] = (),
    ):
        self.env = env or {}
        self.concurrency = concurrency
        self.args = args  # e.g. ("-Q", "periodic") or ("-B", "-s", path)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(settings.VAR_DIR) / f"worker-{name}-{os.getpid()}.log"

    def start(self) -> "Worker":
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gpuniq_site",
            "worker",
            "-P",
            "threads",
            "-c",
            str(self.concurrency),
            "-n",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *self.args,
        ]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=service_env(self.env), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if b"ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-job, as a crashed machine would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class LiveServer:
    def __init__(self, env: dict[str, str] | None = None, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(settings.VAR_DIR) / f"live-{self.port}.log"

    def start(self) -> "LiveServer":
        env = service_env({"PUBLIC_BASE_URL": self.url, **self.env})
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "gpuniq_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "3",
        ]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def samples(base: str, **headers) -> dict:
    """{(sample name, frozenset(labels)): value} from one scrape."""
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)
