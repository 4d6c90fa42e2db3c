"""The Celery app. Broker: CELERY_BROKER_URL (Redis in production, a local folder by default)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")

app = Celery("gpuniq_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "release-stale-holds": {"task": "billing.release_stale_holds", "schedule": 60.0},
    "reap-chat-jobs": {"task": "llm.reap_chat_jobs", "schedule": 30.0},
    "reap-media-jobs": {"task": "media_jobs.reap_media_jobs", "schedule": 15.0},
}

REAPERS = {"billing.release_stale_holds", "llm.reap_chat_jobs", "media_jobs.reap_media_jobs"}


@signals.task_postrun.connect
def _count_reaper_runs(sender=None, task=None, state=None, **_):
    """Every finished run of a reaper is counted for /metrics (gpuniq_site.metrics)."""
    name = getattr(task, "name", "")
    if name in REAPERS and state == "SUCCESS":
        from .metrics import count_reaper_run

        count_reaper_run(name)
