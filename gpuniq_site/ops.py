"""Operator endpoints: /healthz (liveness), /readyz (can this process serve?) and /metrics.

/healthz answers as long as the process runs (and says how it rate-limits right now);
/readyz checks the database, Redis and the Celery broker and answers 503 naming what failed;
/metrics is Prometheus text, for GPUNIQ_METRICS_TOKEN's bearer or, without a token, loopback only.
"""

import hmac
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from . import metrics, shared_state
from .responses import json_response

log = logging.getLogger("gpuniq.ops")
LOOPBACK = {"127.0.0.1", "::1"}


@require_GET
def healthz(request):
    from accounts.ratelimit import mode

    return json_response({"status": "ok", "ratelimit": mode()})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    finally:
        connection.close()


def _check_redis() -> str:
    client = shared_state.sync_redis()
    if client is None:
        return "not configured"
    client.ping()
    shared_state.mark_redis_up()
    return "ok"


def _check_broker() -> str:
    from celery import current_app

    if current_app.conf.broker_url.startswith("filesystem"):
        return "ok"
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    return "ok"


CHECKS = {"database": _check_database, "redis": _check_redis, "broker": _check_broker}


@require_GET
def readyz(request):
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:
            log.warning("readiness: %s failed: %s", name, exc)
            results[name] = f"failed: {type(exc).__name__}"
            failed.append(name)
    body = {"status": "unavailable" if failed else "ok", "checks": results, "failed": failed}
    return json_response(body, status=503 if failed else 200)


def _may_scrape(request) -> bool:
    token = settings.GPUNIQ_METRICS_TOKEN
    if token:
        auth = request.headers.get("Authorization", "")
        return auth[:7].lower() == "bearer " and hmac.compare_digest(
            auth[7:].strip().encode(), token.encode()
        )
    return request.META.get("REMOTE_ADDR") in LOOPBACK


@require_GET
def metrics_view(request):
    if not _may_scrape(request):
        return HttpResponse("metrics are for the operator\n", status=403, content_type="text/plain")
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
