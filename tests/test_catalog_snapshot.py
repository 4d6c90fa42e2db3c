"""The catalog snapshot on the hot path (llm.catalog): no request waits for a rebuild while traffic
flows, no snapshot older than the TTL is served, and a burst of requests rebuilds it once."""

import asyncio
import dataclasses
import time

from llm import catalog


def _aged(seconds: float) -> catalog.Snapshot:
    current = catalog.snapshot()
    catalog._snapshot = dataclasses.replace(current, loaded_at=time.monotonic() - seconds)
    return catalog._snapshot


def _counting_builds(monkeypatch) -> list:
    builds = []
    real = catalog._build_snapshot

    def counting():
        builds.append(1)
        return real()

    monkeypatch.setattr(catalog, "_build_snapshot", counting)
    return builds


async def _settled() -> None:
    while catalog._refreshing:
        await asyncio.sleep(0.01)


async def test_past_half_its_life_requests_keep_the_snapshot_and_one_rebuild_replaces_it(
    committed, settings, monkeypatch
):
    settings.GPUNIQ_CATALOG_TTL_SECONDS = 10
    old = await asyncio.to_thread(_aged, 6)
    builds = _counting_builds(monkeypatch)
    served = await asyncio.gather(*(catalog.asnapshot() for _ in range(50)))
    assert all(snapshot is old for snapshot in served)  # nobody waited for the database
    await _settled()
    assert builds == [1]
    fresh = await catalog.asnapshot()
    assert fresh is not old and time.monotonic() - fresh.loaded_at < 5


async def test_past_its_ttl_a_burst_waits_for_one_rebuild_and_gets_it(committed, settings, monkeypatch):
    settings.GPUNIQ_CATALOG_TTL_SECONDS = 10
    old = await asyncio.to_thread(_aged, 11)
    builds = _counting_builds(monkeypatch)
    served = await asyncio.gather(*(catalog.asnapshot() for _ in range(50)))
    await _settled()
    assert builds == [1]
    assert len({id(snapshot) for snapshot in served}) == 1 and served[0] is not old
    assert served[0].models == old.models


async def test_with_no_ttl_every_read_rebuilds(committed, settings, monkeypatch):
    settings.GPUNIQ_CATALOG_TTL_SECONDS = 0
    builds = _counting_builds(monkeypatch)
    for _ in range(3):
        await catalog.asnapshot()
    assert len(builds) == 3


def test_the_snapshot_holds_what_the_catalog_says(db):
    """What the admin set reaches the hot path: enabled models only, each with its enabled routes in
    their order, and every field as stored (the rebuild reads plain rows, not model instances)."""
    from decimal import Decimal

    from llm.models import CatalogModel, Route

    model = CatalogModel.objects.create(
        slug="snap-test",
        name="Snap",
        vendor="acme",
        kind=CatalogModel.CHAT,
        context_window=1000,
        capabilities=["vision", "tools"],
        input_per_mtok=Decimal("1.25"),
        output_per_mtok=Decimal("5"),
        video_options={"durations": [5]},
        notes="n",
    )
    Route.objects.create(model=model, position=2, provider="openai", upstream_model="second")
    Route.objects.create(model=model, position=1, provider="anthropic", upstream_model="first")
    Route.objects.create(model=model, position=3, provider="xai", upstream_model="off", enabled=False)
    CatalogModel.objects.create(slug="snap-off", name="Off", vendor="acme", kind="chat", enabled=False)
    info = catalog._build_snapshot().models["snap-test"]
    assert [(r.provider, r.upstream_model) for r in info.routes] == [
        ("anthropic", "first"),
        ("openai", "second"),
    ]
    assert info.capabilities == ("vision", "tools") and info.video_options == {"durations": [5]}
    assert (info.input_per_mtok, info.output_per_mtok, info.cached_input_per_mtok) == (
        Decimal("1.25"),
        Decimal("5"),
        None,
    )
    assert (info.context_window, info.max_output, info.first_byte_timeout, info.notes) == (
        1000,
        None,
        120,
        "n",
    )
    assert "snap-off" not in catalog._build_snapshot().models
