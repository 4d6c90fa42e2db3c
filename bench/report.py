"""Turn one benchmark run into bench/results/<date>.json, a Markdown table, and docs/performance.md."""

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DOC = BENCH.parent / "docs" / "performance.md"


def _by(rows, point, target):
    return next((r for r in rows if r["point"] == point and r["target"] == target), None)


def table(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "| point | target | req/s or streams/s | p50 ms | p99 ms | added p50 / p99 ms | TTFB p99 ms | errors "
        "| CPU ms each |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for point in dict.fromkeys(r["point"] for r in rows):
        direct = _by(rows, point, "direct")
        for target in dict.fromkeys(r["target"] for r in rows if r["point"] == point):  # as measured
            r = _by(rows, point, target)
            if r is None:
                continue
            if r.get("failure"):
                lines.append(
                    f"| {point} | {target} | failed: {r['failure'][:60]} | | | | | {r['errors']} | |"
                )
            elif r["kind"] == "non-stream":
                added = (
                    f"{r['p50_ms'] - direct['p50_ms']:.2f} / {r['p99_ms'] - direct['p99_ms']:.2f}"
                    if target != "direct"
                    else ""
                )
                lines.append(
                    f"| {point} | {target} | {r['req_per_s']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                    f"{added} | | {r['errors']} | {r.get('cpu_ms_per', '')} |"
                )
            else:
                added = (
                    f"TTFB +{r['ttfb_p50_ms'] - direct['ttfb_p50_ms']:.1f} / "
                    f"+{r['ttfb_p99_ms'] - direct['ttfb_p99_ms']:.1f}"
                    if target != "direct" and r["ttfb_p50_ms"] is not None
                    else ""
                )
                lines.append(
                    f"| {point} | {target} | {r['streams_per_s']} | {r['total_p50_ms']} "
                    f"| {r['total_p99_ms']} | {added} | {r['ttfb_p99_ms']} | {r['errors'] + r['dropped']} "
                    f"| {r.get('cpu_ms_per', '')} |"
                )
    return "\n".join(lines)


def ratios(result: dict) -> list[str]:
    rows = result["rows"]
    out = []
    for point in dict.fromkeys(r["point"] for r in rows):
        g, lite, d, pk = (_by(rows, point, t) for t in ("gateway", "litellm", "direct", "portkey"))
        key = "req_per_s" if g and g["kind"] == "non-stream" else "streams_per_s"
        for peer, name in ((lite, "LiteLLM"), (pk, "Portkey")):
            if g and peer and peer.get(key):
                out.append(f"- {point}: gateway / {name} throughput = {g[key] / peer[key]:.1f}×")
        if g and d and pk and g["kind"] == "non-stream" and pk.get("p50_ms") is not None:
            out.append(
                f"- {point}: added p50 gateway {g['p50_ms'] - d['p50_ms']:.2f} ms, "
                f"Portkey {pk['p50_ms'] - d['p50_ms']:.2f} ms"
            )
        one = _by(rows, point, "gateway-1p")
        if g and d and g["kind"] == "slow-stream" and d["streams_per_s"]:
            ratio = g["streams_per_s"] / d["streams_per_s"]
            out.append(f"- {point}: gateway / direct completed streams = {ratio:.2f}")
            if g.get("burst_ttfb_p99_ms") is not None and d.get("burst_ttfb_p99_ms") is not None:
                out.append(
                    f"- {point}: the burst (every stream opened at once, before the measured window): "
                    f"TTFB p50 / p99 gateway {g['burst_ttfb_p50_ms']} / {g['burst_ttfb_p99_ms']} ms, "
                    f"direct {d['burst_ttfb_p50_ms']} / {d['burst_ttfb_p99_ms']} ms"
                )
            if one and one.get("streams_per_s") is not None:
                one_ratio = one["streams_per_s"] / d["streams_per_s"]
                out.append(f"- {point}: one app process / direct completed streams = {one_ratio:.2f}")
            if one and one.get("phases_ms"):
                p = one["phases_ms"]
                out.append(
                    f"- {point}: one app process, time to first token by phase (means, "
                    f"gpuniq_stream_start_seconds): gate {p['gate']} ms, vendor {p['vendor']} ms, "
                    f"send {p['send']} ms"
                )
        if g and one and g["kind"] == "non-stream" and one.get(key):
            out.append(f"- {point}: {result['workers']} app processes / one = {g[key] / one[key]:.2f}×")
    return out


def write(result: dict, update_doc: bool = True) -> None:
    stamp = result["date"].replace(":", "").replace("+0000", "Z")
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / f"{stamp}.json").write_text(json.dumps(result, indent=2))
    body = (
        f"Run {result['date']}, {result['machine']['cpus']} cores, Python {result['machine']['python']}, "
        f"{result['workers']} app processes each, {result['seconds_per_point']} s per point.\n\n"
        f"{table(result)}\n\n"
        + "\n".join(ratios(result))
        + f"\n\nMemory after the run (RSS per process, MB): gateway {result['memory']['gateway_rss_mb']}, "
        f"LiteLLM {result['memory']['litellm_rss_mb']}, Portkey {result['memory'].get('portkey_rss_mb')}\n"
    )
    if result["memory"].get("gateway_rss_mb_after_repeat"):
        body += (
            "After the gateway's points were run a second time, identically: gateway "
            f"{result['memory']['gateway_rss_mb_after_repeat']}\n"
        )
    (BENCH / "results" / f"{stamp}.md").write_text(body)
    print(body)
    if not update_doc:
        return
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    marker = "<!-- latest-run -->"
    head = text.split(marker)[0].rstrip() + "\n\n" if marker in text else text.rstrip() + "\n\n"
    DOC.write_text(head + marker + "\n## Latest run\n\n" + body)
