"""Start and stop the processes a benchmark run measures: nginx, the slow upstream, the gateway
(PostgreSQL + Redis, billing, usage and rate limits on, one uvicorn worker per core), the
LiteLLM proxy (its own venv, no database) and the Portkey gateway (Node, npm, no database) — all
pointed at the same upstreams."""

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RUN = BENCH / ".run"
PY = ROOT / ".venv" / "bin" / "python"
LITELLM = BENCH / ".venv-litellm" / "bin" / "litellm"
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/gpuniq_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
LITELLM_KEY = "sk-bench-master-key"
PORTKEY = BENCH / ".portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.request(method, url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Procs:
    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
        log = open(RUN / f"{name}.log", "wb")
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env or os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def start_nginx(procs: Procs) -> int:
    port = free_port()
    subprocess.run([str(PY), str(BENCH / "upstream_nginx.py"), str(port), str(RUN)], check=True)
    procs.start("nginx", ["nginx", "-c", str(RUN / "nginx.conf"), "-g", "daemon off;"])
    wait_http(f"http://127.0.0.1:{port}/json/v1/models")
    return port


def start_slow(procs: Procs) -> int:
    port = free_port()
    procs.start("slow-upstream", [str(PY), str(BENCH / "slow_upstream.py"), str(port)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return port
        time.sleep(0.1)
    raise RuntimeError("slow upstream did not start")


def gateway_env(nginx: int, slow: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTREAM_", "TEST_"))}
    env.update(
        {
            "DATABASE_URL": DB_URL,
            "REDIS_URL": REDIS_URL,
            "GPUNIQ_VAR_DIR": str(RUN / "var"),
            "DEBUG": "0",
            "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "GPUNIQ_SANDBOX": "0",
            "UPSTREAM_OPENAI_BASE_URL": f"http://127.0.0.1:{nginx}/json/v1",
            "UPSTREAM_OPENAI_API_KEY": "bench",
            "UPSTREAM_DEEPSEEK_BASE_URL": f"http://127.0.0.1:{nginx}/sse/v1",
            "UPSTREAM_DEEPSEEK_API_KEY": "bench",
            "UPSTREAM_MINIMAX_BASE_URL": f"http://127.0.0.1:{slow}/v1",
            "UPSTREAM_MINIMAX_API_KEY": "bench",
            "UPSTREAM_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{nginx}/anthropic",
            "UPSTREAM_ANTHROPIC_API_KEY": "bench",
            "DB_POOL_MAX": os.environ.get("BENCH_DB_POOL_MAX", "16"),
        }
    )
    return env


def prepare_gateway(env: dict, root: Path = ROOT) -> str:
    """Fresh bench database (env's DATABASE_URL) migrated by the checkout in `root`, catalog loaded,
    one user with credit and a key; returns the key."""
    import psycopg

    db_url = env["DATABASE_URL"]
    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    manage = [str(PY), "manage.py"]
    subprocess.run(manage + ["migrate", "-v0"], cwd=root, env=env, check=True)
    subprocess.run(manage + ["sync_catalog"], cwd=root, env=env, check=True, capture_output=True)
    out = subprocess.run(
        manage + ["create_api_key", "bench@example.com", "--credit", "1000000", "--rpm", "1000000000"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def analyze(db_url: str) -> None:
    """What autovacuum would have done by now (it is off on some machines, this kind among them):
    fresh statistics, so the gateway's prepared statements are planned again for its tables as they
    are, not as they were when the point that first used them began (docs/performance.md)."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def start_gateway(
    procs: Procs, env: dict, workers: int, root: Path = ROOT, name: str = "gateway"
) -> tuple[int, subprocess.Popen]:
    """The gateway as checked out in `root` (this checkout, or e.g. a worktree of main for a
    before/after in one run), with this checkout's venv: `python -m` imports from its cwd first."""
    port = free_port()
    proc = procs.start(
        name,
        [
            str(PY),
            "-m",
            "uvicorn",
            "gpuniq_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        env=env,
        cwd=root,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return port, proc


def start_litellm(procs: Procs, nginx: int, slow: int, workers: int) -> tuple[int, subprocess.Popen] | None:
    if not LITELLM.exists():
        return None
    port = free_port()
    config = RUN / "litellm.yaml"
    models = [
        ("gpt-4o", f"http://127.0.0.1:{nginx}/json/v1"),
        ("deepseek-chat", f"http://127.0.0.1:{nginx}/sse/v1"),
        ("MiniMax-M2.7", f"http://127.0.0.1:{slow}/v1"),
    ]
    config.write_text(
        "model_list:\n"
        + "".join(
            f"  - model_name: {name}\n    litellm_params:\n"
            f"      model: openai/{name}\n      api_base: {base}\n"
            "      api_key: bench\n"
            for name, base in models
        )
        + "litellm_settings:\n  drop_params: true\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network fetch at start
    proc = procs.start(
        "litellm",
        [
            str(LITELLM),
            "--config",
            str(config),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--num_workers",
            str(workers),
        ],
        env=env,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return port, proc


def start_portkey(procs: Procs) -> tuple[int, subprocess.Popen] | None:
    """The Portkey gateway 1.15.2 (Node, one process, no database), headless."""
    if not PORTKEY.exists():
        return None
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production"}
    proc = procs.start("portkey", ["node", str(PORTKEY), f"--port={port}", "--headless"], env=env)
    wait_http(f"http://127.0.0.1:{port}/", timeout=60)
    return port, proc


def portkey_target(port: int, nginx: int, slow: int) -> dict:
    """Portkey routes by headers: the provider, and the upstream as a custom host."""

    def headers(base: str) -> dict:
        return {"x-portkey-provider": "openai", "x-portkey-custom-host": base}

    path = "/v1/chat/completions"
    return {
        "key": "bench",
        "json_url": f"http://127.0.0.1:{port}{path}",
        "sse": (port, path),
        "slow": (port, path),
        "headers": {
            "json": headers(f"http://127.0.0.1:{nginx}/json/v1"),
            "sse": headers(f"http://127.0.0.1:{nginx}/sse/v1"),
            "slow": headers(f"http://127.0.0.1:{slow}/v1"),
        },
    }


def worker_pids(root_pid: int) -> list[int]:
    """The worker processes of a server (its children if any, else the server itself)."""
    children = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
    workers = [int(p) for p in children if "spawn_main" in _cmdline(int(p))]
    return workers or [int(p) for p in children] or [root_pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU time used so far by a server and its worker processes: per request or
    per stream it is the cost of the server's own work, which a shared machine's noise moves
    much less than throughput."""
    children = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in [root_pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(root_pid: int) -> list[float]:
    """Resident memory of a process tree's worker processes (children if any, else the root)."""
    children = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in children] or [root_pid]
    sizes = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(round(int(line.split()[1]) / 1024, 1))
        except FileNotFoundError:
            pass
    return sizes


PHASES = ("gate", "vendor", "send")


def stream_phases(metrics_url: str) -> dict:
    """gpuniq_stream_start_seconds' sum and count per phase (streams of /v1/openai) from one
    scrape of a one-process gateway."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=30) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name.startswith("gpuniq_stream_start_seconds_") and labels.get("surface") == "openai":
                found[(labels["phase"], sample.name.rsplit("_", 1)[1])] = sample.value
    return found


def phase_means(before: dict, after: dict) -> dict | None:
    """Each phase's mean in ms over the streams that started between two scrapes."""
    means = {}
    for phase in PHASES:
        count = after.get((phase, "count"), 0) - before.get((phase, "count"), 0)
        if not count:
            return None
        total = after.get((phase, "sum"), 0) - before.get((phase, "sum"), 0)
        means[phase] = round(total / count * 1000, 2)
    return means
