"""A worker warmed on lifespan startup (gpuniq_site.lifespan.warm): what it loaded is frozen out of
the collector's sight, and the young generation is collected after GPUNIQ_GC_YOUNG_THRESHOLD new
objects, the older generations' thresholds left as Python has them."""

import gc

import pytest

from gpuniq_site import lifespan


@pytest.fixture
def restored_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.parametrize("young", [50_000, 0])
async def test_a_warmed_worker_collects_its_young_generation_after_the_set_number_of_objects(
    catalog_loaded, restored_gc, settings, young
):
    settings.GPUNIQ_GC_YOUNG_THRESHOLD = young
    gc.set_threshold(700, 10, 10)  # Python's defaults
    await lifespan.warm()
    assert gc.get_threshold() == ((young or 700), 10, 10)
    assert gc.get_freeze_count() > 0  # the warmed modules, catalog and pools are frozen
