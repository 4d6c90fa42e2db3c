"""Ids, numbers and headers PostgreSQL or int() cannot take (a NUL, '²', thousands of digits) get the
answer any other bad value gets: 404 job_not_found, 400 invalid_parameter naming the field, a
Range that is ignored. Never a 500, and nothing is held or charged. A studio batch started under
a 64-character X-Request-Id stores per-image request ids that fit their columns."""

import re
from decimal import Decimal

import httpx
import pytest
from django.test import Client

from billing.models import Hold
from billing.pricing import image_cost
from llm.catalog import snapshot
from media_jobs import storage
from media_jobs.models import MediaJob

from ..conftest import balance_of, make_user

HTMX = {"HTTP_HX_REQUEST": "true"}
# isdigit() is true of all three; int() takes none (past 4,300 digits it refuses any)
UNREADABLE = [
    pytest.param(v, id=i) for v, i in (("²", "sup2"), ("1" * 5000, "5000"), ("0" * 4999 + "1", "0s"))
]


@pytest.fixture
def nils(committed):
    # Nils: $5, types numbers from the wrong keyboard.
    return make_user("nils", "5")


def untouched(user) -> bool:
    return (
        balance_of(user) == Decimal(5)
        and not Hold.objects.filter(account_id=user.account.pk).exists()
        and not MediaJob.objects.filter(user_id=user.pk).exists()
    )


def api(server: str, user) -> httpx.Client:
    return httpx.Client(base_url=f"{server}/v1/llm", headers={"X-API-Key": user.raw_key}, timeout=30)


@pytest.mark.parametrize("path", ["/images/jobs/img_%00", "/images/jobs/img_a%00b", "/videos/jobs/vid_%00"])
def test_a_nul_in_a_job_id_is_not_found(api_server, nils, path):
    with api(api_server, nils) as client:
        response = client.get(path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"
    assert untouched(nils)


@pytest.mark.parametrize("endpoint", ["/images/generations", "/images/jobs"])
@pytest.mark.parametrize("n", UNREADABLE)
def test_an_n_int_cannot_read_is_an_invalid_n(api_server, nils, vendors, endpoint, n):
    with api(api_server, nils) as client:
        response = client.post(endpoint, json={"model": "nano-banana", "prompt": "a cabin", "n": n})
    error = response.json()["error"]
    assert (
        response.status_code == 400 and error["code"] == "invalid_parameter" and error["meta"]["field"] == "n"
    )
    assert untouched(nils)


@pytest.mark.parametrize("duration", [*UNREADABLE, "²s"])
def test_a_duration_int_cannot_read_is_an_invalid_duration(api_server, nils, vendors, duration):
    with api(api_server, nils) as client:
        response = client.post(
            "/videos/jobs", json={"model": "kling-2-6", "prompt": "a cat", "duration": duration}
        )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_parameter"
    assert error["meta"]["field"] == "duration"
    assert untouched(nils)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=" + "9" * 5000 + "-", id="from"),
        pytest.param("bytes=0-" + "9" * 5000, id="to"),
        pytest.param("bytes=-" + "9" * 5000, id="suffix"),
    ],
)
def test_a_range_no_file_can_have_is_ignored(api_server, committed, header):
    data = b"\x89PNG\r\n\x1a\nnot really"
    url = f"{api_server}/v1/llm/media/{storage.sign(storage.save('results', 'image', data, 'image/png'))}"
    response = httpx.get(url, headers={"Range": header}, timeout=30)
    assert response.status_code == 200 and response.content == data
    seek = httpx.get(url, headers={"Range": "bytes=2-4"}, timeout=30)  # a readable range still seeks
    assert seek.status_code == 206 and seek.content == data[2:5]


# --- the studio (in this process, with the vendors configured) ------------------------------------


@pytest.fixture
def as_nils(vendors_in_this_process, nils):
    client = Client()
    client.force_login(nils)
    return client


@pytest.mark.parametrize("path", ["/studio/jobs/img_%00", "/studio/jobs/vid_a%00b"])
def test_a_nul_in_a_studio_job_id_is_not_found(as_nils, nils, path):
    response = as_nils.get(path, **HTMX)
    assert response.status_code == 404 and "job_not_found" in response.content.decode()
    assert untouched(nils)


@pytest.mark.parametrize("n", UNREADABLE)
def test_a_studio_count_int_cannot_read_counts_as_one(as_nils, nils, n):
    for page in ("/studio/", "/studio/params", "/studio/estimate"):
        response = as_nils.get(page, {"kind": "image", "model": "nano-banana", "n": n}, **HTMX)
        assert response.status_code == 200, page
    estimate = as_nils.get("/studio/estimate", {"kind": "image", "model": "nano-banana", "n": n}, **HTMX)
    price = Decimal(re.search(r'data-estimate="([\d.]+)"', estimate.content.decode()).group(1))
    assert price == image_cost(snapshot().models["nano-banana"].per_image, 1)
    assert untouched(nils)


@pytest.mark.parametrize("duration", UNREADABLE)
def test_a_studio_duration_int_cannot_read_is_refused_before_any_hold(as_nils, nils, duration):
    fields = {"kind": "video", "model": "sora-2-official", "duration": duration}
    estimate = as_nils.get("/studio/estimate", fields, **HTMX)
    assert estimate.status_code == 200 and "data-estimate=" not in estimate.content.decode()
    started = as_nils.post("/studio/generate", {**fields, "prompt": "a cat"}, **HTMX)
    assert started.status_code == 400 and "invalid_parameter" in started.content.decode()
    assert untouched(nils)


def test_a_studio_batch_under_a_64_character_request_id_fits_its_columns(as_nils, nils):
    request_id = "r" * 64
    response = as_nils.post(
        "/studio/generate",
        {"kind": "image", "model": "nano-banana", "prompt": "a fox", "n": "3"},
        HTTP_X_REQUEST_ID=request_id,
        **HTMX,
    )
    assert response.status_code == 202, response.content[:500]
    jobs = list(MediaJob.objects.filter(user_id=nils.pk))
    ids = {job.request_id for job in jobs}
    assert len(jobs) == 3 and len(ids) == 3 and all(len(i) <= 64 and i.startswith("r" * 60) for i in ids)
    holds = Hold.objects.filter(pk__in=[job.hold_id for job in jobs])
    assert {hold.request_id for hold in holds} == ids
    assert balance_of(nils) == Decimal(5)  # held, not charged: a read of the completion charges


def test_per_image_request_ids_stay_unique_and_within_64_characters():
    from media_jobs.studio import image_request_id

    for base in ("req_short", "x" * 62, "y" * 64):
        derived = [image_request_id(base, index) for index in range(12)]
        assert len(set(derived)) == 12 and all(len(d) <= 64 for d in derived)
    assert image_request_id("req_short", 2) == "req_short-2"
