"""Image and video generation routes (mounted under /v1/openai/ and /v1/llm/)."""

from django.urls import path

from . import views

openai_patterns = [
    path("images/generations", views.openai_images_generations, name="openai-images"),
]

native_patterns = [
    path("images/generations", views.native_images_generations, name="native-images"),
    path("images/jobs", views.create_image_job, name="image-jobs"),
    path("images/jobs/<str:job_id>", views.get_image_job, name="image-job"),
    path("videos/jobs", views.create_video_job, name="video-jobs"),
    path("videos/jobs/<str:job_id>", views.get_video_job, name="video-job"),
    path("media/<str:token>", views.media_file, name="media-file"),
]
