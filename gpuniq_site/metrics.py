"""Prometheus metrics (prometheus-client). The hot path only bumps counters and histograms in
memory; everything that needs the database or Redis (open holds, loss entries, queue depth,
reaper runs) is read when /metrics is scraped.

Several app processes: set PROMETHEUS_MULTIPROC_DIR to a directory shared by the processes of
one host (emptied before they start); every process writes its samples there and /metrics,
served by any of them, adds them up. Without it each process exposes its own numbers.
"""

import logging
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar

from django.http import HttpRequest

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase

from . import shared_state
from .errors import is_anthropic_path

log = logging.getLogger("gpuniq.metrics")
MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
disable_created_metrics()  # *_created series only add bytes to every scrape

REQUESTS = Counter(
    "gpuniq_requests", "API requests answered, by surface, model and status", ["surface", "model", "status"]
)
OVERHEAD = Histogram(
    "gpuniq_gateway_overhead_seconds",
    "Time spent in the gateway on a non-streamed completion, vendor time excluded",
    ["surface"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
TTFT = Histogram(
    "gpuniq_time_to_first_token_seconds",
    "From the request's arrival to the first streamed chunk sent to the client",
    ["surface", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 120.0),
)
STREAM_START = Histogram(
    "gpuniq_stream_start_seconds",
    "A stream's time to first token in three phases that add up to it: gate (the request's arrival "
    "to its money held: checks, admission, the hold's commit), vendor (to the vendor's first event) "
    "and send (to the first chunk sent)",
    ["surface", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
FUSED_STREAMS = Counter(
    "gpuniq_streams_fused",
    "Streams whose events after the first read went from the vendor's socket straight to the "
    "client's in one loop (llm.providers.openai_relay) instead of the generic path",
)
FED_STREAMS = Counter(
    "gpuniq_streams_fed",
    "Fused streams whose vendor reads were relayed inside the vendor transport's own callback "
    "(llm.providers.relay_feed), with no task step per read",
)
ADMISSIONS_OVERLAPPED = Counter(
    "gpuniq_admissions_overlapped",
    "Requests whose view (and hold) started while their admission was still on its way to Redis "
    "(accounts.guard.key_required_overlapped)",
)
RATELIMIT_FALLBACKS = Counter(
    "gpuniq_ratelimit_fallbacks",
    "Requests whose rate limit was decided by the process-local fallback (Redis down)",
)
RATELIMIT_LOCAL = Gauge(
    "gpuniq_ratelimit_local_mode",
    "1 while this process limits requests locally because Redis is unreachable",
    multiprocess_mode="max",
)
shared_state.health_listeners.append(lambda down: RATELIMIT_LOCAL.set(int(down)))
RATELIMIT_LOCAL.set(int(shared_state.redis_degraded()))
REAPER_RUNS = Counter(
    "gpuniq_reaper_runs", "Runs of a periodic reaper in this process (workers, beat)", ["reaper"]
)

REAPER_KEY = "gpuniq:metrics:reaper_runs"  # Redis hash reaper name → runs, shared by every process


def surface_of(path: str) -> str:
    """openai (/v1/openai/: Chat Completions, Responses, images), anthropic (the Messages door,
    /v1/anthropic/ and /v1/messages) or native (/v1/llm/)."""
    if path.startswith("/v1/openai"):
        return "openai"
    return "anthropic" if is_anthropic_path(path) else "native"


def observe_request(request: HttpRequest, status: int) -> None:
    """Count one /v1/ answer (called once per request by RequestIdMiddleware.after)."""
    surface = surface_of(request.path)
    model = getattr(request, "metric_model", "") or "-"
    REQUESTS.labels(surface, model, str(status)).inc()


def observe_overhead(request: HttpRequest, seconds: float) -> None:
    OVERHEAD.labels(surface_of(request.path)).observe(seconds)


class StreamMarks:
    """When a stream's money was held and when its vendor's first event was read (perf_counter)."""

    __slots__ = ("held", "opened")

    def __init__(self, held: float) -> None:
        self.held, self.opened = held, 0.0


# the request's stream marks: set in the request's own task (llm.completions.start_stream), read
# there when its first chunk is sent; the opening, a task of its own, fills in the same object
_stream_marks: ContextVar[StreamMarks | None] = ContextVar("gpuniq_stream_marks", default=None)


def stream_marks(held: float) -> StreamMarks:
    """The marks of the stream this request is opening, its money held at `held`."""
    marks = StreamMarks(held)
    _stream_marks.set(marks)
    return marks


def observe_first_chunk(request: HttpRequest) -> None:
    """The stream's time to first token, and its phases when the first chunk is the vendor's (not
    a keep-alive sent while the vendor was still silent)."""
    started = getattr(request, "started_at", None)
    if started is None:
        return
    now = time.perf_counter()
    surface = surface_of(request.path)
    TTFT.labels(surface, getattr(request, "metric_model", "") or "-").observe(now - started)
    marks = _stream_marks.get()
    if marks is not None and marks.opened:
        gate, vendor, send = _phases.get(surface) or _phase_children(surface)
        gate.observe(marks.held - started)
        vendor.observe(marks.opened - marks.held)
        send.observe(now - marks.opened)


_Phases = tuple[Histogram, Histogram, Histogram]
_phases: dict[str, _Phases] = {}  # surface → its three phase histograms (labels() looks up and locks)


def _phase_children(surface: str) -> _Phases:
    gate, vendor, send = (STREAM_START.labels(surface, phase) for phase in ("gate", "vendor", "send"))
    found = _phases[surface] = (gate, vendor, send)
    return found


def count_reaper_run(name: str) -> None:
    """A periodic reaper ran: counted in Redis (seen by every app process) and in this process."""
    REAPER_RUNS.labels(name).inc()
    client = shared_state.sync_redis()
    if client is None:
        return
    try:
        client.hincrby(REAPER_KEY, name, 1)
    except Exception as exc:  # a metric must never fail the reaper
        log.warning("could not count reaper run: %s", exc)


class ScrapeTimeCollector:
    """Numbers read at scrape time from PostgreSQL/SQLite and Redis (never on the request path)."""

    def collect(self) -> Iterator[Metric]:
        yield from _ledger_metrics()
        yield from _redis_metrics()


def _ledger_metrics() -> Iterator[Metric]:
    from django.apps import apps  # by name: the floor of gpuniq_site imports no app

    hold, entry = apps.get_model("billing", "Hold"), apps.get_model("billing", "LedgerEntry")
    try:
        open_holds = hold.objects.count_open()
        losses = entry.objects.filter(kind="loss").count()
    except Exception as exc:
        log.warning("metrics: database unavailable: %s", exc)
        return
    yield GaugeMetricFamily(
        "gpuniq_open_holds", "Holds currently open (money reserved, not yet settled)", value=open_holds
    )
    yield CounterMetricFamily("gpuniq_ledger_loss_entries", "Ledger entries of kind 'loss'", value=losses)


def _redis_metrics() -> Iterator[Metric]:
    from celery import current_app
    from django.conf import settings

    depth = GaugeMetricFamily("gpuniq_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"])
    runs = CounterMetricFamily(
        "gpuniq_reaper_runs_recorded", "Reaper runs recorded in Redis by any process", labels=["reaper"]
    )
    client = shared_state.sync_redis()
    broker = current_app.conf.broker_url or ""
    try:
        if broker.startswith("redis"):
            import redis

            with redis.Redis.from_url(broker, socket_timeout=2, socket_connect_timeout=2) as conn:
                for queue in settings.GPUNIQ_METRICS_QUEUES:
                    depth.add_metric([queue], conn.llen(queue))
        if client is not None:
            for name, count in sorted(client.hgetall(REAPER_KEY).items()):
                runs.add_metric([name.decode() if isinstance(name, bytes) else name], int(count))
    except Exception as exc:
        log.warning("metrics: redis unavailable: %s", exc)
    yield depth
    yield runs


def render() -> bytes:
    registry = CollectorRegistry()
    if MULTIPROC:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:  # every metric of this module: a new one cannot be left out of one process's scrape
        for collector in globals().values():
            if isinstance(collector, MetricWrapperBase):
                registry.register(collector)
    registry.register(ScrapeTimeCollector())
    return generate_latest(registry)
