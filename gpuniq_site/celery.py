"""The Celery app. Broker: CELERY_BROKER_URL (Redis in production, a local folder by default).

Two queues: GPUNIQ_JOBS_QUEUE ("jobs": chat and media jobs, each waiting minutes on a vendor) and
GPUNIQ_PERIODIC_QUEUE ("periodic": the beat schedule's reapers, each a few queries). Production
runs a worker per queue (`-Q jobs`, `-Q periodic`), so hundreds of queued jobs never delay the task
that releases stale holds; a worker started without -Q consumes both (make run, tests).
"""

import logging
import os

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")

from .env import envfloat, envstr  # noqa: E402

app = Celery("gpuniq_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Read here, not in settings: this module is imported while the settings module loads.
JOBS, PERIODIC = envstr("GPUNIQ_JOBS_QUEUE", "jobs"), envstr("GPUNIQ_PERIODIC_QUEUE", "periodic")
SCHEDULE = {  # beat entry → (task, seconds between runs)
    "release-stale-holds": ("billing.release_stale_holds", envfloat("GPUNIQ_STALE_HOLDS_EVERY", 60.0)),
    "reap-chat-jobs": ("llm.reap_chat_jobs", envfloat("GPUNIQ_REAP_CHAT_JOBS_EVERY", 30.0)),
    "reap-media-jobs": ("media_jobs.reap_media_jobs", envfloat("GPUNIQ_REAP_MEDIA_JOBS_EVERY", 15.0)),
}
app.conf.task_default_queue = JOBS
app.conf.task_queues = (Queue(JOBS), Queue(PERIODIC))
app.conf.task_routes = {task: {"queue": PERIODIC} for task, _ in SCHEDULE.values()}
app.conf.beat_schedule = {  # a run nobody picked up within its interval is dropped, not piled up
    name: {"task": task, "schedule": every, "options": {"queue": PERIODIC, "expires": every}}
    for name, (task, every) in SCHEDULE.items()
}


@signals.setup_logging.connect
def _log_as_the_app_does(loglevel=None, **_):
    """Workers and beat log as the app processes do (settings.LOGGING: one JSON object per line
    under PostgreSQL, with the request id of the job being run), at their --loglevel; without this
    receiver Celery replaces the handlers with its own plain format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.celeryd_init.connect
def _size_database_pool(sender=None, instance=None, options=None, **_):
    """A worker's database pool follows its own -c (gpuniq_site.db.size_for_worker)."""
    from .db import size_for_worker

    concurrency = (
        (options or {}).get("concurrency") or getattr(instance, "concurrency", None) or os.cpu_count()
    )
    size_for_worker(int(concurrency))


REAPERS = {"billing.release_stale_holds", "llm.reap_chat_jobs", "media_jobs.reap_media_jobs"}


@signals.task_postrun.connect
def _count_reaper_runs(sender=None, task=None, state=None, **_):
    """Every finished run of a reaper is counted for /metrics (gpuniq_site.metrics)."""
    name = getattr(task, "name", "")
    if name in REAPERS and state == "SUCCESS":
        from .metrics import count_reaper_run

        count_reaper_run(name)
