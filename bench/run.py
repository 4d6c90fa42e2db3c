"""`make bench`: the gateway against the upstream direct, the LiteLLM proxy and the Portkey gateway
(Node), same machine, same run, interleaved point by point. Writes bench/results/<date>.json and
.md and docs/performance.md.

  --quick      short points (a few seconds each) for a first look
  --smoke      2-second points against the upstream only, to check the scripts parse
  --profile P  a py-spy flame graph of one gateway worker during point P (e.g. "slow-stream c=500")
  --only P,Q   run only these points (e.g. "non-stream c=1,slow-stream c=500"); with --seconds N
               and --no-litellm, a quick same-run comparison of one change (results/ only)
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import profile_summary  # noqa: E402
import report  # noqa: E402
import stream_client  # noqa: E402
import targets  # noqa: E402

NON_STREAM_POINTS = [1, 16, 64, 256]
FAST_STREAM_POINT = 64
SLOW_STREAM_POINTS = [100, 500, 1000]
# A stream point opens all its streams at once (a burst), then measures the steady state from this
# many seconds on; the burst's own time to first byte is reported beside it (stream_client).
STREAM_WARMUP = 2.0


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
    port: int,
    path: str,
    key: str,
    model: str,
    concurrency: int,
    seconds: float,
    headers: dict | None = None,
    warmup: float = 0.0,
    on_window=None,
) -> dict:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    import uvloop

    return uvloop.run(
        stream_client.run(
            "127.0.0.1",
            port,
            path,
            key,
            body,
            concurrency,
            seconds,
            headers,
            warmup=warmup,
            on_window=on_window,
        )
    )


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
    writes its collapsed stacks (profile-<point>.stacks, for flamegraph.pl or speedscope; not kept
    in git) and a summary of the busiest functions (profile-<point>.txt, what the performance notes
    quote)."""

    def __init__(self, point: str | None, gateway_pid: int | None):
        self.point, self.pid, self.proc, self.out = point, gateway_pid, None, None

    def start(self, point: str, target: str, seconds: float) -> None:
        if point != self.point or target != "gateway" or not self.pid:
            return
        worker = targets.worker_pids(self.pid)[0]
        out = targets.BENCH / "results" / f"profile-{point.replace(' ', '-').replace('=', '')}.stacks"
        out.parent.mkdir(exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        self.out, self.proc = (
            out,
            subprocess.Popen(
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
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            ),
        )
        print(f"profiling worker {worker} during {point}: {out}", flush=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.wait()
            self.proc = None
            if self.out.exists():
                text = profile_summary.summary(self.out)
                self.out.with_suffix(".txt").write_text(text + "\n")
                print(text, flush=True)


def _with_cpu(target: dict, run, windowed: bool = False) -> dict:
    """run()'s measurement plus the target's own CPU per request or stream (its process tree's
    user + system time over the point), when the bench started the target. `windowed`: run takes
    a callback it calls as its measured window starts (stream points: the warm-up's CPU is left out)."""
    pid, metrics_url = target.get("pid"), target.get("metrics_url")
    before = targets.cpu_seconds(pid) if pid else None
    phases = None

    def window_starts() -> None:
        nonlocal before, phases
        before = targets.cpu_seconds(pid) if pid else None
        phases = targets.stream_phases(metrics_url) if metrics_url else None

    measured = run(on_window=window_starts) if windowed else run()
    done = measured.get("completed", measured.get("requests"))
    if before is not None and done:
        measured["cpu_ms_per"] = round((targets.cpu_seconds(pid) - before) * 1000 / done, 3)
    if phases is not None:
        measured["phases_ms"] = targets.phase_means(phases, targets.stream_phases(metrics_url))
    return measured


def measure(
    targets_: dict, seconds: int, smoke: bool, profiler: "Profiler | None" = None, only: set | None = None
) -> list[dict]:
    profiler = profiler or Profiler(None, None)
    wanted = (lambda point: point in only) if only else (lambda point: True)
    rows = []
    chat = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 64,
    }
    points = [1] if smoke else NON_STREAM_POINTS
    for c in [c for c in points if wanted(f"non-stream c={c}")]:
        for name, t in targets_.items():
            headers = t.get("headers", {}).get("json")
            _analyzed(t)
            wrk(t["json_url"], t["key"], chat, c, 1, headers)  # warm-up
            profiler.start(f"non-stream c={c}", name, seconds)
            measured = _with_cpu(t, partial(wrk, t["json_url"], t["key"], chat, c, seconds, headers))
            point = {"point": f"non-stream c={c}", "kind": "non-stream", "concurrency": c, "target": name}
            rows.append({**point, **measured})
            profiler.stop()
            print(rows[-1], flush=True)
    stream_points = [("fast-stream", FAST_STREAM_POINT, "sse", "deepseek-chat")]
    stream_points += [
        ("slow-stream", c, "slow", "MiniMax-M2.7") for c in ([10] if smoke else SLOW_STREAM_POINTS)
    ]
    for kind, c, upstream, model in [p for p in stream_points if wanted(f"{p[0]} c={p[1]}")]:
        for name, t in targets_.items():
            _analyzed(t)
            rows.append({"point": f"{kind} c={c}", "kind": kind, "concurrency": c, "target": name})
            profiler.start(f"{kind} c={c}", name, max(seconds, 3))
            measured = _with_cpu(
                t, partial(_streams_or_failure, t, upstream, model, c, seconds), windowed=True
            )
            rows[-1].update(measured)
            profiler.stop()
            print(rows[-1], flush=True)
    return rows


def _history(gateways: dict, seconds: int) -> None:
    """Some paid requests through each gateway before the first point: a gateway in service has
    a history, and its statements are planned for tables that are not empty (with each point's
    ANALYZE, _analyzed); from an empty database, whichever point comes first would measure plans
    made for empty tables."""
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "history"}], "max_tokens": 8}
    for t in gateways.values():
        wrk(t["json_url"], t["key"], chat, 16, seconds)


def _analyzed(target: dict) -> None:
    if "db_url" in target:  # a gateway: its tables' statistics as autovacuum would keep them
        targets.analyze(target["db_url"])


def measure_rounds(rounds: int, found: dict, *args) -> list[dict]:
    """measure() `rounds` times; odd rounds measure the two gateway builds the other way round."""
    rows = []
    for round_ in range(rounds):
        order = list(found)
        if round_ % 2 and "gateway-base" in found:
            i, j = order.index("gateway"), order.index("gateway-base")
            order[i], order[j] = order[j], order[i]
        rows += [{**row, "round": round_} for row in measure({n: found[n] for n in order}, *args)]
    return rows


def _streams_or_failure(t: dict, upstream: str, model: str, c: int, seconds: int, on_window=None) -> dict:
    port, path = t[upstream]
    try:
        return streams(
            port,
            path,
            t["key"],
            model,
            c,
            max(seconds, 3),
            t.get("headers", {}).get(upstream),
            STREAM_WARMUP,
            on_window,
        )
    except Exception as error:  # noqa: BLE001 — a peer that cannot stream is a result
        return failed(error)


def _gateway_target(pid: int, key: str, port: int, db_url: str) -> dict:
    path = "/v1/openai/chat/completions"
    return {
        "pid": pid,
        "db_url": db_url,
        "key": key,
        "json_url": f"http://127.0.0.1:{port}{path}",
        "sse": (port, path),
        "slow": (port, path),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--no-portkey", action="store_true")
    parser.add_argument(
        "--no-one-process", action="store_true", help="skip the gateway-1p column (one app process)"
    )
    parser.add_argument(
        "--profile",
        metavar="POINT",
        help='e.g. "slow-stream c=500": py-spy flame graph of a gateway worker during that point',
    )
    parser.add_argument("--only", metavar="POINTS", help='comma-separated points, e.g. "slow-stream c=500"')
    parser.add_argument("--rounds", type=int, default=1, help="measure every point this many times")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure the gateway as checked out in DIR (e.g. a worktree of main), as the "
        "gateway-base column: before and after in one run",
    )
    args = parser.parse_args()
    seconds = 2 if args.smoke else 4 if args.quick else args.seconds
    only = {p.strip() for p in args.only.split(",")} if args.only else None
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
            if args.baseline:  # its own database, migrated by its own code: the schema is part of it
                base_root = Path(args.baseline).resolve()
                base_env = {**env, "DATABASE_URL": env["DATABASE_URL"] + "_base"}
                base_key = targets.prepare_gateway(base_env, base_root)
            gw_port, gw_proc = targets.start_gateway(procs, env, args.workers)
            found["gateway"] = _gateway_target(gw_proc.pid, key, gw_port, env["DATABASE_URL"])
            if args.baseline:
                base_port, base_proc = targets.start_gateway(
                    procs, base_env, args.workers, base_root, "gateway-base"
                )
                found["gateway-base"] = _gateway_target(
                    base_proc.pid, base_key, base_port, base_env["DATABASE_URL"]
                )
            if args.workers > 1 and not args.no_one_process:  # operators size a deployment per core
                one_port, one_proc = targets.start_gateway(procs, env, 1)
                found["gateway-1p"] = _gateway_target(one_proc.pid, key, one_port, env["DATABASE_URL"])
                # one process answers every scrape: its stream phases over a point are its own
                found["gateway-1p"]["metrics_url"] = f"http://127.0.0.1:{one_port}/metrics"
            started = None if args.no_litellm else targets.start_litellm(procs, nginx, slow, args.workers)
            if started:
                lite_port, lite_proc = started
                found["litellm"] = {
                    "pid": lite_proc.pid,
                    "key": targets.LITELLM_KEY,
                    "json_url": f"http://127.0.0.1:{lite_port}/v1/chat/completions",
                    "sse": (lite_port, "/v1/chat/completions"),
                    "slow": (lite_port, "/v1/chat/completions"),
                }
            started = None if args.no_portkey else targets.start_portkey(procs)
            if started:
                found["portkey"] = targets.portkey_target(started[0], nginx, slow)
                port_proc = started[1]
                found["portkey"]["pid"] = port_proc.pid
        _history({name: t for name, t in found.items() if "db_url" in t}, seconds=3)
        profiler = Profiler(args.profile, gw_proc.pid if gw_proc else None)
        rows = measure_rounds(args.rounds, found, seconds, args.smoke, profiler, only)
        memory = {
            "gateway_rss_mb": targets.rss_mb(gw_proc.pid) if gw_proc else None,
            "litellm_rss_mb": targets.rss_mb(lite_proc.pid) if lite_proc else None,
            "portkey_rss_mb": targets.rss_mb(port_proc.pid) if port_proc else None,
        }
        if gw_proc and not args.quick and not only:  # memory must not grow between two identical runs
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
    report.write(
        result, update_doc=not args.quick and not only
    )  # a quick look never replaces the full run's table
    return 0


if __name__ == "__main__":
    sys.exit(main())
