from django.apps import AppConfig


class MediaJobsConfig(AppConfig):
    name = "media_jobs"

    def ready(self):
        """Provide image jobs to llm's chat image turns (llm imports nothing of media_jobs)."""
        from llm import image_jobs

        from .chat_images import ChatImageJobs

        image_jobs.register(ChatImageJobs())
