"""`make bench`: the gateway against the upstream direct, the LiteLLM proxy and the Portkey gateway
(Node), same machine, same run, interleaved point by point. Writes bench/results/<date>.json and
.md and docs/performance.md.

  --quick      short points (a few seconds each) for a first look
  --smoke      2-second points against the upstream only, to check the scripts parse
  --profile P  a py-spy flame graph of one gateway worker during point P (e.g. "slow-stream c=500")
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import stream_client  # noqa: E402
import targets  # noqa: E402

NON_STREAM_POINTS = [1, 16, 64, 256]
FAST_STREAM_POINT = 64
SLOW_STREAM_POINTS = [100, 500, 1000]


def wrk(url: str, key: str, body: dict, concurrency: int, seconds: int, headers: dict | None = None) -> dict:
    env = {
        **os.environ,
        "BENCH_BODY": json.dumps(body),
        "BENCH_KEY": key,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
    }
    threads = str(min(concurrency, 2))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            threads,
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(targets.BENCH / "post.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    line = next((row for row in out.stdout.splitlines() if row.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")
    raw = json.loads(line[7:])
    duration = raw["duration_us"] / 1e6
    return {
        "req_per_s": round(raw["requests"] / duration, 1),
        "requests": raw["requests"],
        "errors": raw["socket_errors"] + raw["non200"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
    }


def streams(
    port: int, path: str, key: str, model: str, concurrency: int, seconds: float, headers: dict | None = None
) -> dict:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    import uvloop

    return uvloop.run(stream_client.run("127.0.0.1", port, path, key, body, concurrency, seconds, headers))


def failed(error: Exception) -> dict:
    """A point a peer could not serve at all (Portkey's streams on Node 20): reported, not hidden."""
    return {
        "req_per_s": 0,
        "streams_per_s": 0,
        "requests": 0,
        "errors": 1,
        "dropped": 0,
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "ttfb_p50_ms": None,
        "ttfb_p99_ms": None,
        "total_p50_ms": None,
        "total_p99_ms": None,
        "failure": str(error)[:300],
    }


class Profiler:
    """`--profile "slow-stream c=500"`: py-spy samples one gateway worker while that point runs and
    writes a flame graph next to the results (the same profile the performance notes quote)."""

    def __init__(self, point: str | None, gateway_pid: int | None):
        self.point, self.pid, self.proc = point, gateway_pid, None

    def start(self, point: str, target: str, seconds: float) -> None:
        if point != self.point or target != "gateway" or not self.pid:
            return
        worker = targets.worker_pids(self.pid)[0]
        out = targets.BENCH / "results" / f"profile-{point.replace(' ', '-').replace('=', '')}.svg"
        out.parent.mkdir(exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        self.proc = subprocess.Popen(
            [
                str(spy),
                "record",
                "-p",
                str(worker),
                "-d",
                str(max(int(seconds) - 1, 1)),
                "-r",
                "200",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        print(f"profiling worker {worker} during {point}: {out}", flush=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.wait()
            self.proc = None


def measure(targets_: dict, seconds: int, smoke: bool, profiler: "Profiler | None" = None) -> list[dict]:
    profiler = profiler or Profiler(None, None)
    rows = []
    chat = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 64,
    }
    points = [1] if smoke else NON_STREAM_POINTS
    for c in points:
        for name, t in targets_.items():
            headers = t.get("headers", {}).get("json")
            wrk(t["json_url"], t["key"], chat, c, 1, headers)  # warm-up
            profiler.start(f"non-stream c={c}", name, seconds)
            rows.append(
                {
                    "point": f"non-stream c={c}",
                    "kind": "non-stream",
                    "concurrency": c,
                    "target": name,
                    **wrk(t["json_url"], t["key"], chat, c, seconds, headers),
                }
            )
            profiler.stop()
            print(rows[-1], flush=True)
    stream_points = [("fast-stream", FAST_STREAM_POINT, "sse", "deepseek-chat")]
    stream_points += [
        ("slow-stream", c, "slow", "MiniMax-M2.7") for c in ([10] if smoke else SLOW_STREAM_POINTS)
    ]
    for kind, c, upstream, model in stream_points:
        for name, t in targets_.items():
            port, path = t[upstream]
            profiler.start(f"{kind} c={c}", name, max(seconds, 3))
            try:
                measured = streams(
                    port, path, t["key"], model, c, max(seconds, 3), t.get("headers", {}).get(upstream)
                )
            except Exception as error:  # noqa: BLE001 — a peer that cannot stream is a result
                measured = failed(error)
            rows.append(
                {"point": f"{kind} c={c}", "kind": kind, "concurrency": c, "target": name, **measured}
            )
            profiler.stop()
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--no-portkey", action="store_true")
    parser.add_argument(
        "--profile",
        metavar="POINT",
        help='e.g. "slow-stream c=500": py-spy flame graph of a gateway worker during that point',
    )
    args = parser.parse_args()
    seconds = 2 if args.smoke else 4 if args.quick else args.seconds
    targets.RUN.mkdir(parents=True, exist_ok=True)
    procs = targets.Procs()
    try:
        nginx, slow = targets.start_nginx(procs), targets.start_slow(procs)
        found = {
            "direct": {
                "key": "bench",
                "json_url": f"http://127.0.0.1:{nginx}/json/v1/chat/completions",
                "sse": (nginx, "/sse/v1/chat/completions"),
                "slow": (slow, "/v1/chat/completions"),
            }
        }
        gw_proc = lite_proc = port_proc = None
        if not args.smoke:
            env = targets.gateway_env(nginx, slow)
            key = targets.prepare_gateway(env)
            gw_port, gw_proc = targets.start_gateway(procs, env, args.workers)
            base = f"http://127.0.0.1:{gw_port}/v1/openai/chat/completions"
            found["gateway"] = {
                "key": key,
                "json_url": base,
                "sse": (gw_port, "/v1/openai/chat/completions"),
                "slow": (gw_port, "/v1/openai/chat/completions"),
            }
            started = None if args.no_litellm else targets.start_litellm(procs, nginx, slow, args.workers)
            if started:
                lite_port, lite_proc = started
                found["litellm"] = {
                    "key": targets.LITELLM_KEY,
                    "json_url": f"http://127.0.0.1:{lite_port}/v1/chat/completions",
                    "sse": (lite_port, "/v1/chat/completions"),
                    "slow": (lite_port, "/v1/chat/completions"),
                }
            started = None if args.no_portkey else targets.start_portkey(procs)
            if started:
                found["portkey"] = targets.portkey_target(started[0], nginx, slow)
                port_proc = started[1]
        rows = measure(found, seconds, args.smoke, Profiler(args.profile, gw_proc.pid if gw_proc else None))
        memory = {
            "gateway_rss_mb": targets.rss_mb(gw_proc.pid) if gw_proc else None,
            "litellm_rss_mb": targets.rss_mb(lite_proc.pid) if lite_proc else None,
            "portkey_rss_mb": targets.rss_mb(port_proc.pid) if port_proc else None,
        }
        if gw_proc and not args.quick:  # memory must not grow between two identical runs
            print("repeating the gateway's points to compare memory", flush=True)
            measure({"gateway": found["gateway"]}, seconds, smoke=False)
            memory["gateway_rss_mb_after_repeat"] = targets.rss_mb(gw_proc.pid)
    finally:
        procs.stop()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds_per_point": seconds,
        "workers": args.workers,
        "rows": rows,
        "memory": memory,
    }
    if args.smoke:
        print(json.dumps(result))
        return 0
    report.write(result, update_doc=not args.quick)  # a quick look never replaces the full run's table
    return 0


if __name__ == "__main__":
    sys.exit(main())
