"""The gateway's CPU per hold and settle on the hot path (billing.ledger.ahold / aclose through the
group-commit lanes), in-process against the real PostgreSQL; and the raw time of the two
statements on one warm connection, the floor of a paid request's added latency.

  DATABASE_URL=postgresql://... .venv/bin/python manage.py migrate
  DATABASE_URL=postgresql://... .venv/bin/python bench/ledger_micro.py [--rounds N] [--batch B]

Each round holds B requests at once, then settles them at once with their usage rows (the first
settle goes alone, the others wait for it and go as one batch, as under load). It prints the
microseconds of this process's CPU per settle, the wall time per round, then the median time of a
hold (as the hot path sends it, not waiting for the disk; and as a job's, which does) and of a
settle with its usage row, one at a time on one connection. The account it uses
(bench-ledger@example.invalid) is credited through the ledger when it runs low. To compare two
versions, run it in each checkout, from that checkout's directory.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from billing import ledger, metering, pg_ledger  # noqa: E402
from billing.models import Account  # noqa: E402
from gpuniq_site.db import pg_pool, uses_postgres  # noqa: E402


def usage_row(user_id: int, n: int) -> dict:
    return metering.row_params(
        user_id=user_id,
        api_key_id=None,
        request_id=f"bench-{n}",
        endpoint="chat",
        model="gpt-4o",
        route="openai:gpt-4o",
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=10,
        reasoning_tokens=0,
        latency_ms=1,
        status="ok",
        stream=True,
    )


def credit(account_id: int) -> None:
    """Enough for the run, through the ledger (an adjustment), so that the ledger still adds up."""
    available = Account.objects.get(pk=account_id).available
    if available < 1000:
        ledger.post(
            account_id=account_id,
            amount=Decimal(1000) - available,
            kind="adjustment",
            idempotency_key=f"bench-ledger-credit:{time.time_ns()}",
            reason="bench/ledger_micro.py",
        )


async def lanes(account_id: int, user_id: int, rounds: int, batch: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(rounds):
        holds = await asyncio.gather(
            *[
                ledger.ahold(
                    account_id=account_id, amount="0.01", idempotency_key=f"bench:{time.time_ns()}:{n}"
                )
                for n in range(batch)
            ]
        )
        cpu_at, wall_at = time.process_time(), time.perf_counter()
        await asyncio.gather(
            *[
                ledger.aclose(
                    hold_id=h.id, account_id=account_id, actual="0.005", usage=usage_row(user_id, n)
                )
                for n, h in enumerate(holds)
            ]
        )
        cpu.append((time.process_time() - cpu_at) / batch)
        wall.append(time.perf_counter() - wall_at)
    skip = rounds // 10
    return statistics.median(cpu[skip:]) * 1e6, statistics.median(wall[skip:]) * 1e6


async def raw(account_id: int, user_id: int, statements: int) -> tuple[float, float, float]:
    """Median hold (the hot path's, which does not wait for the disk), settle with its usage row,
    and hold with a flush (as a job's), one at a time on one connection."""
    holds, settles, flushed = [], [], []
    async with (await pg_pool()).connection() as conn:
        for n in range(statements):
            params = {
                "account": account_id,
                "amount": Decimal("0.01"),
                "key": f"bench-raw:{time.time_ns()}",
                "purpose": "chat",
                "request_id": "bench",
                "api_key": None,
                "cap": None,
            }
            durable = n % 2 == 1  # every other hold waits for the disk, for comparison
            started = time.perf_counter()
            sql = pg_ledger.HOLD_SQL if durable else pg_ledger.HOLD_NO_FLUSH_SQL
            hold_id = (await (await conn.execute(sql, params)).fetchone())[0]
            held = time.perf_counter()
            settle = {
                **usage_row(user_id, n),
                **pg_ledger.settle_params(hold_id=hold_id, actual="0.005", reason="bench"),
            }
            await (await conn.execute(pg_ledger.SETTLE_WITH_USAGE_SQL, settle)).fetchone()
            (flushed if durable else holds).append(held - started)
            settles.append(time.perf_counter() - held)
    skip = statements // 20

    def median(times: list[float]) -> float:
        return statistics.median(times[skip:]) * 1e6

    return median(holds), median(settles), median(flushed)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if not uses_postgres():
        raise SystemExit("set DATABASE_URL to a migrated PostgreSQL database")
    user, _ = await asyncio.to_thread(
        get_user_model().objects.get_or_create, email="bench-ledger@example.invalid"
    )
    account = await asyncio.to_thread(ledger.account_for_user, user.pk)
    await asyncio.to_thread(credit, account.pk)
    cpu, wall = await lanes(account.pk, user.pk, args.rounds, args.batch)
    print(f"{args.batch} settles at once: {cpu:.0f} µs of CPU per settle, {wall:.0f} µs per round")
    hold, settle, flushed = await raw(account.pk, user.pk, args.rounds * 4)
    print(
        f"one at a time on one connection: hold {hold:.0f} µs (waiting for the disk: {flushed:.0f} µs), "
        f"settle with its usage row {settle:.0f} µs"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
