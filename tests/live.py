"""The real ASGI server (uvicorn) on a socket, in its own process, on the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


class LiveServer:
    def __init__(self, env: dict[str, str] | None = None, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(settings.VAR_DIR) / f"live-{self.port}.log"

    def start(self) -> "LiveServer":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTREAM_", "TEST_", "PYTEST"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "gpuniq_site.settings", "DATABASE_URL": test_database_url(),
            "GPUNIQ_VAR_DIR": str(settings.VAR_DIR), "SECRET_KEY": settings.SECRET_KEY, "DB_CONN_MAX_AGE": "60",
            "PUBLIC_BASE_URL": self.url, "GPUNIQ_SANDBOX": "0",
        })
        if settings.HAS_REDIS:
            env["REDIS_URL"] = settings.REDIS_URL
        else:
            env.pop("REDIS_URL", None)
        env.update(self.env)
        cmd = [sys.executable, "-m", "uvicorn", "gpuniq_site.asgi:application", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning",
               "--no-access-log", "--timeout-graceful-shutdown", "3"]
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
