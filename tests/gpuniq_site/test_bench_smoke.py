"""The benchmark's scripts still run and parse (a 2-second smoke against the upstream alone; no
timing is asserted: CI times nothing). The full run is `make bench`."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import stream_client  # noqa: E402


@pytest.mark.skipif(
    not (shutil.which("nginx") and shutil.which("wrk")), reason="make bench installs nginx and wrk"
)
def test_bench_smoke_runs_every_driver_and_prints_parsable_results():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rows = {row["point"]: row for row in result["rows"]}
    assert rows["non-stream c=1"]["requests"] > 0 and rows["non-stream c=1"]["errors"] == 0
    for point in ("fast-stream c=64", "slow-stream c=10"):
        assert rows[point]["completed"] > 0 and rows[point]["errors"] == rows[point]["dropped"] == 0


def test_stream_client_decodes_chunked_bodies_split_anywhere():
    body = b"9\r\ndata: a\n\n\r\n3;x=1\r\nxyz\r\n0\r\n\r\n"
    for size in (1, 2, 3, 5, len(body)):
        decoder, out = stream_client._Dechunk(), b""
        for i in range(0, len(body), size):
            out += decoder.feed(body[i : i + size])
        assert (out, decoder.done) == (b"data: a\n\nxyz", True)
    with pytest.raises(ValueError):
        stream_client._Dechunk().feed(b"2\r\nabXX")


def test_streams_in_lockstep_count_the_same_whatever_the_windows_phase():
    """Streams of 1.024 s back to back, as the upstream direct serves them: counted by their share
    of a 10-second window, the rate is 1/1.024 per worker wherever the window starts; a count of
    whole streams ending inside it would give 9 or 10."""
    length = 1.024
    for start in (2.0, 2.3, 2.9):
        window = (start, start + 10.0)
        streams = [(i * length, (i + 1) * length) for i in range(20)]
        counted = sum(stream_client.window_share(a, b, window) for a, b in streams)
        assert abs(counted / 10.0 - 1 / length) < 1e-9
    assert stream_client.window_share(0.0, 1.0, (5.0, 6.0)) == 0.0  # outside: nothing


def test_slow_upstream_streams_anthropic_events_to_the_stream_client():
    """The front-door bench's Anthropic mode: a POST to /v1/messages gets Messages events, and the
    client counts a stream as completed on `event: message_stop`."""
    import socket
    import time

    import uvloop

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "slow_upstream.py"), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        body = {"model": "claude-haiku-4-5", "stream": True, "max_tokens": 64, "messages": []}
        run = stream_client.run(
            "127.0.0.1", port, "/v1/messages", "k", body, 2, 1.5, None, b"event: message_stop"
        )
        result = uvloop.run(run)
    finally:
        server.terminate()
        server.wait(10)
    assert result["completed"] >= 2 and result["errors"] == result["dropped"] == 0


def test_doors_compares_each_door_with_its_own_gateways_chat_and_with_the_baseline():
    import doors

    def row(target, door, round_, rate):
        return {
            "kind": "streams",
            "door": door,
            "model": "m",
            "target": target,
            "round": round_,
            "streams_per_s": rate,
            "errors": 0,
            "dropped": 0,
            "ttfb_p99_ms": 1.0,
        }

    rows = [
        row("gateway", doors.CHAT, 0, 400),
        row("gateway-base", doors.CHAT, 0, 500),
        row("gateway", "Responses", 0, 360),
        row("gateway-base", "Responses", 0, 300),
        row("gateway", doors.CHAT, 1, 200),
        row("gateway-base", doors.CHAT, 1, 200),
        row("gateway", "Responses", 1, 180),
        row("gateway-base", "Responses", 1, 100),
    ]
    summary = {(r["target"], r["door"]): r for r in doors.summarize(rows)}
    assert summary["gateway", "Responses"]["ratio"] == 0.9  # 360/400 and 180/200
    assert summary["gateway-base", "Responses"]["ratio"] == 0.55  # median of 0.6 and 0.5
    [chat, responses] = doors.versus_base(rows)
    assert (chat["door"], chat["ratio"]) == (doors.CHAT, 0.9)  # median of 0.8 and 1.0
    assert (responses["rounds"], responses["ratio"]) == ([1.2, 1.8], 1.5)
    assert "| streams c=500 | Responses | 1.500 | 1.200 / 1.800 |" in doors.base_table([chat, responses])
    assert "| gateway-base | Responses |" in doors.table(doors.summarize(rows))
    assert doors._turns({"gateway": 1, "gateway-base": 2}, 1) == [("gateway-base", 2), ("gateway", 1)]


def _micro(script: str, *args: str, env: dict | None = None) -> str:
    """A bench/ micro script's output, run from the checkout; it must exit 0."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_relay_micro_relays_every_read_and_prints_its_cost():
    """bench/relay_micro.py drives the real fused relay; it exits non-zero if the relay did not
    take its reads (an error, an early end, no text billed)."""
    out = _micro("relay_micro.py", "--reads", "200", "--runs", "1")
    assert out.startswith("fused relay, one event per read: ") and " ns of CPU per read" in out


@pytest.mark.postgres
def test_ledger_micro_holds_and_settles_against_the_real_database(committed):
    """bench/ledger_micro.py, on the test database: its holds and settles go through (it would exit
    with a traceback if one were refused or failed), and the ledger still adds up afterwards."""
    import os

    from django.db import connection

    db = connection.settings_dict  # the test database, migrated
    url = f"postgresql://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "gpuniq_site.settings"}
    first, second = _micro("ledger_micro.py", "--rounds", "20", "--batch", "4", env=env).strip().splitlines()
    assert first.startswith("4 settles at once: ") and second.startswith("one at a time on one connection: ")
    from billing import ledger

    assert ledger.find_mismatches() == []  # its credit went through the ledger like every other
