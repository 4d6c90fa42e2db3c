"""Shared fixtures. People: alice (the caller in most tests) and bob (whose data alice must never see).

Data that another thread or process must see (async views run their database work in a
thread pool; the ASGI server runs in its own process) is committed through `committed`, and
alice and bob are made that way: rows stay until the test database is dropped. Tests marked
django_db run inside a transaction that is rolled back, alice and bob included.
"""

import os
import uuid
from decimal import Decimal

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable_postgres() -> bool:
    import psycopg

    try:
        psycopg.connect(os.environ["TEST_DATABASE_URL"], connect_timeout=3).close()
        return True
    except Exception:
        return False


def _reachable_redis() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_timeout=3).ping())
    except Exception:
        return False


def pytest_sessionstart(session):
    if not IN_CI:
        return
    problems = []
    if not os.environ.get("TEST_DATABASE_URL") or not _reachable_postgres():
        problems.append("PostgreSQL (TEST_DATABASE_URL)")
    if not os.environ.get("TEST_REDIS_URL") or not _reachable_redis():
        problems.append("Redis (TEST_REDIS_URL)")
    if problems:
        pytest.exit(f"CI=true but unreachable or unset: {', '.join(problems)}", returncode=3)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL")
    skip_redis = pytest.mark.skip(reason="needs Redis: set TEST_REDIS_URL")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.HAS_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    if settings.HAS_REDIS:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _static_files_collected():
    """Pages name static files by their hashed names (the manifest storage): collect them once,
    before any page renders or server process starts."""
    from gpuniq_site.static_build import collect_if_changed

    collect_if_changed()


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """pytest-django's set-up, but always for the default database: tests that commit through
    `committed` (and the server process they talk to) carry no django_db marker."""
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            aliases={"default"},
            serialized_aliases=set(),
            keepdb=keepdb,
        )
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            _disconnect_others()
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)


def _disconnect_others():
    """Server processes and worker threads may still hold a session; the drop needs none."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()


@pytest.fixture(scope="session")
def catalog_loaded(django_db_setup, django_db_blocker):
    from llm.catalog import sync_catalog

    with django_db_blocker.unblock():
        sync_catalog(settings.GPUNIQ_CATALOG_PATH)


@pytest.fixture
def committed(catalog_loaded, django_db_blocker):
    """Database access whose writes are committed (visible to other processes and threads)."""
    with django_db_blocker.unblock():
        yield


def make_user(label: str, credit: str | Decimal = "0", **key_options):
    """A user with an account, `credit` USD added through the ledger, and one API key."""
    from accounts.keys import create_key
    from accounts.models import User
    from billing import ledger
    from billing.models import LedgerEntry

    user = User.objects.create_user(f"{label}-{uuid.uuid4().hex[:8]}@example.com", password="correct horse 1")
    account = ledger.account_for_user(user.pk)
    if Decimal(credit):
        ledger.post(
            account_id=account.pk,
            amount=credit,
            kind=LedgerEntry.TOPUP,
            idempotency_key=f"test-credit:{uuid.uuid4().hex}",
            reason="test credit",
        )
    key, raw = create_key(user=user, **key_options)
    user.raw_key, user.key, user.account = raw, key, account
    return user


@pytest.fixture
def alice(committed):
    # Alice: $10, one key; the caller in most tests.
    return make_user("alice", "10")


@pytest.fixture
def bob(committed):
    # Bob: $10, one key; his objects must be invisible to Alice.
    return make_user("bob", "10")


FAKE_KEY = "test-key"


@pytest.fixture(scope="session")
def fake_vendors():
    """Loopback fakes of the vendors' APIs; one OpenAI-style fake serves every compatible vendor,
    and one media fake per image/video credential family (media_fakes)."""
    from .fakes.anthropic import FakeAnthropic
    from .fakes.gemini import FakeGemini
    from .fakes.openai_compat import FakeOpenAI

    fakes = {
        "openai": FakeOpenAI(api_key=FAKE_KEY),
        "anthropic": FakeAnthropic(api_key=FAKE_KEY),
        "gemini": FakeGemini(api_key=FAKE_KEY),
        **media_fakes(),
    }
    for fake in fakes.values():
        fake.start()
    yield fakes
    for fake in fakes.values():
        fake.stop()


def upstream_env(fakes) -> dict[str, str]:
    openai_base = fakes["openai"].api_base
    env = {
        f"UPSTREAM_{p}_BASE_URL": openai_base for p in ("OPENAI", "XAI", "DEEPSEEK", "MINIMAX", "FALLBACK")
    }
    env["UPSTREAM_ANTHROPIC_BASE_URL"] = fakes["anthropic"].base_url
    env["UPSTREAM_GEMINI_BASE_URL"] = fakes["gemini"].base_url
    for p in ("OPENAI", "XAI", "DEEPSEEK", "MINIMAX", "FALLBACK", "ANTHROPIC", "GEMINI"):
        env[f"UPSTREAM_{p}_API_KEY"] = FAKE_KEY
    env.update(media_upstream_env(fakes))
    return env


# --- media_jobs: image/video vendor fakes, one per media credential family (llm/upstreams.py) ---
# fal video ids without "video" in them (Veo, Wan Animate); their sub-paths (.../image-to-video) too
FAL_VIDEO_IDS = ("fal-ai/veo3.1", "fal-ai/wan/v2.2-14b/animate/move")
MEDIA_FAKES = {  # fakes key → (env prefix, path under the fake's base URL)
    "fal": ("FAL", ""),
    "openai_images": ("OPENAI_IMAGES", "/v1"),
    "xai_images": ("XAI_IMAGES", "/v1"),
    "gemini_images": ("GEMINI_IMAGES", ""),
    "openai_video": ("OPENAI_VIDEO", "/v1"),
    "fallback_images": ("FALLBACK_IMAGES", "/v1"),
}


def media_fakes() -> dict:
    """Started fakes of fal's queue, OpenAI Images (and xAI's flavour, and the generic fallback),
    Gemini image output and OpenAI Videos; quick (no delays, two status polls per fal job)."""
    from .fakes.fal import FakeFal
    from .fakes.gemini_images import FakeGemini as FakeGeminiImages
    from .fakes.openai_images import FakeOpenAIImages
    from .fakes.openai_video import FakeOpenAIVideo

    fakes = {
        "fal": FakeFal(api_key=FAKE_KEY, steps=2, video_models=FAL_VIDEO_IDS, slow_seconds=0.3),
        "openai_images": FakeOpenAIImages(api_key=FAKE_KEY),
        "xai_images": FakeOpenAIImages(api_key=FAKE_KEY, flavor="xai"),
        "gemini_images": FakeGeminiImages(api_key=FAKE_KEY),
        "openai_video": FakeOpenAIVideo(api_key=FAKE_KEY, steps=2),
        "fallback_images": FakeOpenAIImages(api_key=FAKE_KEY),
    }
    for fake in fakes.values():
        fake.start()
    return fakes


def media_upstream_env(fakes) -> dict[str, str]:
    env = {}
    for name, (prefix, path) in MEDIA_FAKES.items():
        if name in fakes:
            env[f"UPSTREAM_{prefix}_BASE_URL"] = fakes[name].base_url + path
            env[f"UPSTREAM_{prefix}_API_KEY"] = FAKE_KEY
    return env


@pytest.fixture(scope="session")
def api_server(catalog_loaded, fake_vendors):
    """The real ASGI server on a socket, sharing the test database (and Redis when configured),
    with every chat vendor pointed at its loopback fake."""
    from .live import LiveServer

    server = LiveServer(env=service_extra_env(fake_vendors)).start()
    yield server.url
    server.stop()


def service_extra_env(fakes) -> dict[str, str]:
    """What the API server and the workers add to the shared test environment."""
    return {
        **upstream_env(fakes),
        "GPUNIQ_KEEPALIVE_SECONDS": "0.5",
        "GPUNIQ_STREAM_IDLE_TIMEOUT": "3",
        "GPUNIQ_MEDIA_POLL_SECONDS": "0.02",
        "GPUNIQ_MEDIA_HEARTBEAT_SECONDS": "0.5",
    }


@pytest.fixture(scope="session")
def celery_worker_proc(catalog_loaded, fake_vendors):
    """A real Celery worker process, configured like the API server."""
    from .live import Worker

    worker = Worker(env=service_extra_env(fake_vendors)).start()
    yield worker
    worker.stop()


@pytest.fixture
def vendors(fake_vendors):
    """The session's fake vendors, with scripts and request logs cleared for this test, and no route
    cooling down from an earlier test's faults (the cool-downs live in the shared Redis)."""
    for fake in fake_vendors.values():
        fake.reset()
    if settings.HAS_REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("gpuniq:route:*"):
            client.delete(key)
    return fake_vendors


def balance_of(user) -> Decimal:
    from billing.models import Account

    return Account.objects.get(pk=user.account.pk).balance


def usage_rows(user):
    from billing.models import UsageLog

    return list(UsageLog.objects.filter(user_id=user.pk).order_by("id"))


def native_client(server: str, user):
    """An httpx client for the native API as `user`."""
    import httpx

    return httpx.Client(base_url=f"{server}/v1/llm", headers={"X-API-Key": user.raw_key}, timeout=30)


@pytest.fixture
def as_alice(api_server, alice):
    """Alice on the native API (dashboard tests override this with a logged-in Django client)."""
    with native_client(api_server, alice) as client:
        yield client


@pytest.fixture
def as_bob(api_server, bob):
    with native_client(api_server, bob) as client:
        yield client


@pytest.fixture
def vendors_in_this_process(monkeypatch, fake_vendors):
    """This test process sees the (fake) vendors as configured, so catalog models are available to
    views called in-process (the dashboard tests)."""
    from llm import upstreams

    for name, value in upstream_env(fake_vendors).items():
        monkeypatch.setenv(name, value)
    upstreams.reset()
    yield
    monkeypatch.undo()
    upstreams.reset()
