from celery import shared_task

from . import chat_worker


@shared_task(name="llm.run_chat_job", acks_late=True)
def run_chat_job(job_id: str) -> None:
    chat_worker.execute(job_id)


@shared_task(name="llm.reap_chat_jobs")
def reap_chat_jobs() -> int:
    return chat_worker.reap()
