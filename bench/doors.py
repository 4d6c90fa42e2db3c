"""The front doors against Chat Completions, same gateway, same run, interleaved door by door:
Anthropic Messages in front of an OpenAI-family model and Responses in front of an Anthropic model,
each as a ratio of the Chat Completions path (issue #18's target: at least 0.80).

  .venv/bin/python bench/doors.py [--seconds N] [--rounds R] [--workers W] [--baseline DIR]

Non-streaming at c=64 (wrk, static nginx upstreams: OpenAI JSON for gpt-4o, Anthropic JSON for
claude-haiku-4-5), then 500 concurrent one-second streams (the slow upstream: OpenAI chunks for
MiniMax-M2.7, Anthropic events for claude-haiku-4-5). The gateway has one Anthropic base URL, so it
is restarted between the two phases with that URL moved from nginx to the slow upstream; every door
of a phase is measured against the same gateway processes. Responses go with `store: false` (what
Codex CLI sends). Each phase runs R rounds (door after door); a door's ratio is the median of its
per-round ratios.

--baseline DIR also runs the gateway as checked out in DIR (e.g. a worktree of main) beside this
one, each door measured on both in turn (which goes first alternates by round), and adds each
door's throughput on this code over the baseline's: the median of the per-round ratios. On a
shared machine that is the one way to see a door's change: single rounds swing by 2x.
Writes bench/results/doors-<timestamp>.md and .json.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stream_client  # noqa: E402
import targets  # noqa: E402
from run import STREAM_WARMUP, wrk  # noqa: E402

NON_STREAM_CONCURRENCY = 64
STREAM_CONCURRENCY = 500
PROMPT = "Say hello to the benchmark."
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
CHAT = "Chat Completions"


def doors(stream: bool) -> list[dict]:
    """The three paths of one phase: name, gateway path, body, extra headers, end-of-stream marker."""
    openai_model = "MiniMax-M2.7" if stream else "gpt-4o"
    messages = [{"role": "user", "content": PROMPT}]
    more = {"stream": True} if stream else {}
    return [
        {
            "door": CHAT,
            "model": openai_model,
            "path": "/v1/openai/chat/completions",
            "body": {"model": openai_model, "messages": messages, "max_tokens": 64, **more},
            "headers": {},
            "done": b"data: [DONE]",
        },
        {
            "door": "Anthropic Messages",
            "model": openai_model,
            "path": "/v1/anthropic/v1/messages",
            "body": {"model": openai_model, "messages": messages, "max_tokens": 64, **more},
            "headers": ANTHROPIC_HEADERS,
            "done": b"event: message_stop",
        },
        {
            "door": "Responses",
            "model": "claude-haiku-4-5",
            "path": "/v1/openai/responses",
            "body": {
                "model": "claude-haiku-4-5",
                "input": PROMPT,
                "max_output_tokens": 64,
                "store": False,
                **more,
            },
            "headers": {},
            "done": b"event: response.completed",
        },
    ]


Gateways = dict[str, int]  # target name ("gateway", "gateway-base") → its port


def _turns(gateways: Gateways, round_: int) -> list[tuple[str, int]]:
    """The gateways in this round's order: the first goes first in even rounds, last in odd ones."""
    order = list(gateways.items())
    return order if round_ % 2 == 0 else order[::-1]


def non_stream_phase(gateways: Gateways, key: str, seconds: int, round_: int) -> list[dict]:
    rows = []
    for door in doors(stream=False):
        for target, port in _turns(gateways, round_):
            url = f"http://127.0.0.1:{port}{door['path']}"
            wrk(url, key, door["body"], NON_STREAM_CONCURRENCY, 1, door["headers"])  # warm-up
            measured = wrk(url, key, door["body"], NON_STREAM_CONCURRENCY, seconds, door["headers"])
            rows.append(
                {"kind": "non-stream", "door": door["door"], "model": door["model"], "target": target}
            )
            rows[-1].update(measured, round=round_)
            print(rows[-1], flush=True)
    return rows


def _streams(port: int, key: str, door: dict, concurrency: int, seconds: float, warmup: float = 0.0) -> dict:
    import uvloop

    return uvloop.run(
        stream_client.run(
            "127.0.0.1",
            port,
            door["path"],
            key,
            door["body"],
            concurrency,
            seconds,
            door["headers"],
            door["done"],
            warmup=warmup,
        )
    )


def stream_phase(gateways: Gateways, key: str, seconds: int, round_: int) -> list[dict]:
    rows = []
    for door in doors(stream=True):
        for target, port in _turns(gateways, round_):
            # the steady state after the burst of opening them all at once, as in bench/run.py
            measured = _streams(port, key, door, STREAM_CONCURRENCY, max(seconds, 3), STREAM_WARMUP)
            rows.append({"kind": "streams", "door": door["door"], "model": door["model"], "target": target})
            rows[-1].update(measured, round=round_)
            print(rows[-1], flush=True)
    return rows


def _start(procs: targets.Procs, env: dict, workers: int, roots: dict[str, Path]) -> tuple[Gateways, list]:
    gateways, started = {}, []
    for target, root in roots.items():
        port, proc = targets.start_gateway(procs, env, workers, root, target)
        gateways[target] = port
        started.append(proc)
    return gateways, started


def _stop(procs: targets.Procs, started: list) -> None:
    """Stop these gateways (only them)."""
    for proc in started:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        procs.procs.remove(proc)


def measure(seconds: int, workers: int, rounds: int, baseline: Path | None = None) -> list[dict]:
    targets.RUN.mkdir(parents=True, exist_ok=True)
    procs = targets.Procs()
    roots = {"gateway": targets.ROOT, **({"gateway-base": baseline} if baseline else {})}
    try:
        nginx, slow = targets.start_nginx(procs), targets.start_slow(procs)
        env = targets.gateway_env(nginx, slow)
        key = targets.prepare_gateway(env)
        gateways, started = _start(procs, env, workers, roots)
        rows = [row for i in range(rounds) for row in non_stream_phase(gateways, key, seconds, i)]
        env["UPSTREAM_ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{slow}"
        _stop(procs, started)  # restarted with the Anthropic URL on the slow upstream
        gateways, started = _start(procs, env, workers, roots)
        return rows + [row for i in range(rounds) for row in stream_phase(gateways, key, seconds, i)]
    finally:
        procs.stop()


def _rate(row: dict) -> float:
    return row["req_per_s"] if row["kind"] == "non-stream" else row["streams_per_s"]


def summarize(rows: list[dict]) -> list[dict]:
    """Per gateway, door and phase, the round with the median throughput, and `ratio`: the median
    over rounds of its throughput over Chat Completions' on the same gateway in the same round (a
    drift in the machine's load moves both sides of each ratio alike)."""
    chat = {(r["target"], r["kind"], r["round"]): _rate(r) for r in rows if r["door"] == CHAT}
    out = []
    for target, kind, door in dict.fromkeys((r["target"], r["kind"], r["door"]) for r in rows):
        mine = sorted(
            (r for r in rows if (r["target"], r["kind"], r["door"]) == (target, kind, door)), key=_rate
        )
        ratios = [_rate(r) / chat[target, kind, r["round"]] for r in mine if chat[target, kind, r["round"]]]
        out.append(
            {
                **mine[(len(mine) - 1) // 2],
                "rounds": [_rate(r) for r in sorted(mine, key=lambda r: r["round"])],
                "ratio": round(statistics.median(ratios), 2) if ratios else None,
            }
        )
    return out


def versus_base(rows: list[dict]) -> list[dict]:
    """Per door and phase, this code's throughput over the baseline's: each round's ratio (the two
    measured one right after the other) and their median."""
    rate = {(r["target"], r["kind"], r["door"], r["round"]): _rate(r) for r in rows}
    out = []
    for kind, door in dict.fromkeys((r["kind"], r["door"]) for r in rows if r["target"] == "gateway-base"):
        rounds = sorted({r["round"] for r in rows if (r["kind"], r["door"]) == (kind, door)})
        ratios = [
            rate["gateway", kind, door, i] / rate["gateway-base", kind, door, i]
            for i in rounds
            if rate.get(("gateway-base", kind, door, i)) and ("gateway", kind, door, i) in rate
        ]
        if ratios:
            out.append(
                {"kind": kind, "door": door, "rounds": ratios, "ratio": round(statistics.median(ratios), 3)}
            )
    return out


def base_table(compared: list[dict]) -> str:
    lines = ["| Point | Door | This code / baseline (median) | Rounds |", "|---|---|---:|---|"]
    for c in compared:
        point = (
            f"non-stream c={NON_STREAM_CONCURRENCY}"
            if c["kind"] == "non-stream"
            else f"streams c={STREAM_CONCURRENCY}"
        )
        runs = " / ".join(f"{x:.3f}" for x in c["rounds"])
        lines.append(f"| {point} | {c['door']} | {c['ratio']:.3f} | {runs} |")
    return "\n".join(lines) + "\n"


def _cells(r: dict) -> tuple[str, str, str, int]:
    if r["kind"] == "non-stream":
        return (
            f"non-stream c={NON_STREAM_CONCURRENCY}",
            f"{r['req_per_s']} req/s",
            f"{r['p99_ms']:.1f} ms",
            r["errors"],
        )
    errors = r["errors"] + r["dropped"]
    return (
        f"streams c={STREAM_CONCURRENCY}",
        f"{r['streams_per_s']} streams/s",
        f"TTFB {r['ttfb_p99_ms']:.0f} ms",
        errors,
    )


def table(rows: list[dict]) -> str:
    """One table; with a baseline, a Gateway column says whose row it is."""
    both = len({r["target"] for r in rows}) > 1
    gateway = ("Gateway | ", "---|") if both else ("", "")
    lines = [
        f"| Point | {gateway[0]}Door | Model | Throughput (median) | p99 | Errors"
        " | Ratio to Chat Completions | Rounds |",
        f"|---|{gateway[1]}---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        point, rate, p99, errors = _cells(r)
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        runs = " / ".join(f"{x:g}" for x in r["rounds"])
        who = f"{r['target']} | " if both else ""
        lines.append(
            f"| {point} | {who}{r['door']} | {r['model']} | {rate} | {p99} | {errors} | {ratio} | {runs} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    measured = measure(args.seconds, args.workers, args.rounds, args.baseline and args.baseline.resolve())
    rows = summarize(measured)
    compared = versus_base(measured)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = targets.BENCH / "results" / f"doors-{stamp.strftime('%Y-%m-%dT%H%M%SZ')}"
    out.parent.mkdir(exist_ok=True)
    head = (
        f"# Front doors vs Chat Completions ({stamp.isoformat(timespec='seconds')})\n\n"
        f"{os.cpu_count()} CPUs, {args.workers} gateway workers, {args.seconds} s per point, "
        f"median of {args.rounds} interleaved rounds, "
        "billing, usage rows and rate limits on. `.venv/bin/python bench/doors.py"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + "`\n\n"
    )
    text = table(rows)
    if compared:
        text += (
            f"\nThis code against `{args.baseline}`, each door measured on both in turn:\n\n"
            + base_table(compared)
        )
    out.with_suffix(".md").write_text(head + text)
    document = {"date": stamp.isoformat(), "rows": rows, "versus_baseline": compared}
    out.with_suffix(".json").write_text(json.dumps(document, indent=1))
    print(text)
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
