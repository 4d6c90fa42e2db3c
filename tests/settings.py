"""Test settings: the real PostgreSQL/Redis when TEST_DATABASE_URL / TEST_REDIS_URL are set
(CI sets both), otherwise a SQLite file and process memory. Read before Django starts."""

import os
import re
import tempfile
from pathlib import Path

# one test database and var dir per checkout: test runs in two clones on one machine never share them
_checkout = (
    re.sub(r"[^a-z0-9]+", "_", Path(__file__).resolve().parent.parent.name.lower()).strip("_") or "main"
)
_var = os.environ.setdefault(
    "GPUNIQ_VAR_DIR", os.path.join(tempfile.gettempdir(), f"gpuniq-test-{os.getuid()}-{_checkout}")
)
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_var}/test-base.sqlite3"
if os.environ.get("TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
else:
    os.environ.pop("REDIS_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
for name in list(os.environ):
    if name.startswith("UPSTREAM_"):
        del os.environ[name]  # tests point upstreams at loopback fakes explicitly
os.environ["GPUNIQ_SANDBOX"] = "0"
os.environ.setdefault("DB_POOL_MAX", "10")  # several servers share PostgreSQL's ~100 sessions

from gpuniq_site.settings import *  # noqa: E402,F403
from gpuniq_site.settings import DATABASES, VAR_DIR  # noqa: E402

TEST_DB_NAME = os.environ.get("TEST_DB_NAME", f"test_gpuniq_{_checkout}"[:63])
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"{TEST_DB_NAME}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": TEST_DB_NAME}
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
