from celery import shared_task

from . import worker


@shared_task(name="media_jobs.run_media_job", acks_late=True)
def run_media_job(job_id: str) -> None:
    worker.execute(job_id)


@shared_task(name="media_jobs.reap_media_jobs")
def reap_media_jobs() -> int:
    return worker.reap()
