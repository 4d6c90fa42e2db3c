"""The gateway as an image build installs it: `pip install <checkout>` (non-editable, no dev
extras) into a fresh venv, then, from a directory outside the checkout, migrations on a fresh
PostgreSQL database, a real Celery worker and beat on Redis and the production server (gpuniq-web)
from that venv. A sandbox image job completes through that worker, beat's reaper runs on it, and a
page renders with its static files. Slow (one pip install, from pip's cache), so it runs once per
`make test`."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ..live import ROOT, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.slow]
OFFLINE_SIGNS = (
    "No matching distribution",
    "Could not find a version",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


def _pip_install(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        if any(sign in done.stderr for sign in OFFLINE_SIGNS):
            pytest.skip(f"offline: pip could not fetch the dependencies ({done.stderr.strip()[-200:]})")
        raise AssertionError(f"pip install failed:\n{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the project and its production dependencies."""
    venv = tmp_path_factory.mktemp("deploy") / "venv"
    _pip_install(venv)
    return venv / "bin"


@pytest.fixture
def fresh_database():
    """A PostgreSQL database of its own, dropped afterwards."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    name = f"deploy_{uuid.uuid4().hex[:10]}"
    admin = dict(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = f"{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}@" if db.get("USER") else ""
    yield f"postgresql://{auth}{admin['host']}:{admin['port']}/{name}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(workdir: Path, database_url: str, port: int) -> dict[str, str]:
    from django.conf import settings

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    tag = uuid.uuid4().hex[:8]
    return {
        **{k: os.environ[k] for k in keep if k in os.environ},
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": "deploy-test-" + tag * 4,
        "GPUNIQ_SANDBOX": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # this test's own queues: a worker of the surrounding test session must not take its jobs
        "GPUNIQ_JOBS_QUEUE": f"deploy-jobs-{tag}",
        "GPUNIQ_PERIODIC_QUEUE": f"deploy-periodic-{tag}",
        "GPUNIQ_MEDIA_POLL_SECONDS": "0.05",
        "DB_POOL_MAX": "4",
        "GPUNIQ_STALE_HOLDS_EVERY": "1",  # beat's first reaper run comes within a second
        "LOG_LEVEL": "WARNING",
    }


def _run(bin_dir: Path, cwd: Path, env: dict, *args: str) -> str:
    done = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def _start(cmd: list[str], cwd: Path, env: dict, log: Path, ready) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd[0]} exited: {log.read_text(errors='replace')[-3000:]}")
        if ready():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{cmd[0]} did not start: {log.read_text(errors='replace')[-3000:]}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_non_editable_install_without_dev_extras_runs_jobs_and_serves_pages(
    installed, fresh_database, tmp_path
):
    port = free_port()
    env = _env(tmp_path, fresh_database, port)
    site = _run(
        installed, tmp_path, env, "python", "-c", "import gpuniq_site, llm.views; print(gpuniq_site.__file__)"
    )
    assert "site-packages" in site and str(ROOT) not in site  # the installed copy, not the checkout
    _run(installed, tmp_path, env, "gpuniq-manage", "migrate", "--noinput")
    _run(installed, tmp_path, env, "gpuniq-manage", "sync_catalog")
    _run(installed, tmp_path, env, "gpuniq-manage", "collectstatic", "--noinput")
    key = (
        _run(
            installed,
            tmp_path,
            env,
            "gpuniq-manage",
            "create_api_key",
            "ops@example.com",
            "--credit",
            "5",
            "--rpm",
            "1000",
        )
        .strip()
        .splitlines()[-1]
    )

    worker_log = tmp_path / "worker.log"
    procs = [
        _start(
            [
                str(installed / "celery"),
                "-A",
                "gpuniq_site",
                "worker",
                "-P",
                "threads",
                "-c",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            tmp_path,
            env,
            worker_log,
            lambda: b"ready." in worker_log.read_bytes(),
        )
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        procs.append(
            _start(
                [str(installed / "gpuniq-web")],
                tmp_path,
                env,
                tmp_path / "web.log",
                lambda: _answers(f"{base}/healthz"),
            )
        )
        beat_log = tmp_path / "beat.log"
        beat = [str(installed / "celery"), "-A", "gpuniq_site", "beat", "--loglevel", "INFO"]
        procs.append(
            _start(
                [*beat, "-s", str(tmp_path / "schedule")],
                tmp_path,
                env,
                beat_log,
                lambda: b"Sending due task release-stale-holds" in beat_log.read_bytes(),
            )
        )
        headers = {"X-API-Key": key}
        kicked = httpx.post(
            f"{base}/v1/llm/images/jobs",
            headers=headers,
            timeout=10,
            json={"model": "nano-banana", "prompt": "a lighthouse at dusk", "n": 1},
        )
        assert kicked.status_code == 202, kicked.text
        job_id = kicked.json()["data"]["job_id"]
        data = _poll_until_terminal(f"{base}/v1/llm/images/jobs/{job_id}", headers)
        assert data["status"] == "completed", data
        assert data["cost_usd"] == 0.0312 and data["balance_usd"] == pytest.approx(5 - 0.0312)
        assert "succeeded" in worker_log.read_text(errors="replace")  # ran on this worker, not elsewhere
        _wait_for(lambda: "billing.release_stale_holds" in worker_log.read_text(errors="replace"))

        page = httpx.get(f"{base}/login/", timeout=10)
        assert page.status_code == 200 and "<form" in page.text
        linked = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page.text)
        assert linked, "the page links the collected, hashed stylesheet"
        css = httpx.get(f"{base}{linked.group(1)}", timeout=10, headers={"Accept-Encoding": "br"})
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert css.headers.get("content-encoding") == "br" and "immutable" in css.headers["cache-control"]
    finally:
        _stop(procs)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _poll_until_terminal(url: str, headers: dict, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = httpx.get(url, headers=headers, timeout=10).json()["data"]
        if data["status"] in ("completed", "failed"):
            return data
        time.sleep(0.2)
    raise AssertionError(f"job still {data['status']} after {timeout} s")
