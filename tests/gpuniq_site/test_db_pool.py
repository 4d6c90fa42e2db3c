"""The hot path's PostgreSQL pool tells the operator when the database does not analyze its tables:
with autovacuum off, the ledger's prepared statements keep plans made while billing_hold was small."""

import asyncio

import pytest
from django.db import connection

from gpuniq_site import db


@pytest.mark.postgres
def test_a_new_pool_says_in_the_log_whether_autovacuum_is_off(committed, caplog):
    from psycopg_pool import AsyncConnectionPool

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        off = cursor.fetchone()[0] == "off"

    async def open_one() -> bool:
        pool = AsyncConnectionPool(
            db._conninfo(), min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
        )
        await pool.open()
        try:
            return await db._warn_if_autovacuum_off(pool)
        finally:
            await pool.close()

    with caplog.at_level("WARNING", logger="gpuniq.db"):
        warned = asyncio.run(open_one())
    assert warned is off
    assert (db.AUTOVACUUM_OFF in caplog.text) is off
