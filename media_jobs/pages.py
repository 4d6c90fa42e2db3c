"""The studio (/studio/): image and video generation with a live price, job progress and a gallery.

Session-authenticated, CSRF-protected; jobs start and are read through the jobs API's own
functions (media_jobs.studio → media_jobs.jobs / job_reads) with the user's dashboard principal,
so holds, the single charge and usage rows are the API's. Another user's job is a 404.
"""

from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from accounts.keys import dashboard_principal
from accounts.web import member_page
from gpuniq_site.db import run_db
from accounts.web import dashboard_endpoint
from llm.web_chat import usd_label

from . import job_reads, studio
from .models import MediaJob


def _kind(request) -> str:
    kind = request.GET.get("kind") or request.POST.get("kind")
    return kind if kind in studio.KINDS else MediaJob.IMAGE


def _form_context(request, principal, kind: str) -> dict:
    model = studio.pick_model(principal, kind, request.GET.get("model"))
    return {
        "kind": kind,
        "models": studio.models_for(principal, kind),
        "model": model,
        "options": model.video_options if model else {},
        "sizes": studio.sizes_for(model),
        "formats": studio.OUTPUT_FORMATS,
        "estimate": studio.estimate(principal, kind, request.GET),
    }


@member_page
@require_GET
def studio_page(request):
    principal = dashboard_principal(request.user)
    context = _form_context(request, principal, _kind(request))
    context.update(tiles=studio.gallery(request.user.pk), jobs=studio.unfinished(request.user.pk))
    return render(request, "media_jobs/studio.html", context)


@member_page
@require_GET
def studio_params(request):
    """The parameters of the chosen model (video options differ per model), with their estimate."""
    principal = dashboard_principal(request.user)
    return render(request, "media_jobs/_params.html", _form_context(request, principal, _kind(request)))


@member_page
@require_GET
def studio_estimate(request):
    principal = dashboard_principal(request.user)
    return render(
        request,
        "media_jobs/_estimate.html",
        {"estimate": studio.estimate(principal, _kind(request), request.GET)},
    )


@member_page
@require_GET
def studio_gallery(request):
    return render(request, "media_jobs/_gallery.html", {"tiles": studio.gallery(request.user.pk)})


@require_POST
@dashboard_endpoint
async def studio_generate(request):
    started = await studio.start(request.principal, _kind(request), request.POST, request.request_id)
    html = "".join(render_to_string("media_jobs/_job.html", {"job": job, "data": None}) for job in started)
    return HttpResponse(html, status=202)


def _row(user_id: int, job_id: str) -> MediaJob:
    return MediaJob.objects.get(pk=job_id, user_id=user_id)


@require_GET
@dashboard_endpoint(counted=False)
async def studio_job(request, job_id: str):
    """One poll through the jobs API's read (the first read of a completion charges, once)."""
    data, _shared = await job_reads.read(request.principal, job_id, studio.kind_of(job_id))
    data.get("image", {}).pop("b64_json", None)  # the page shows the signed link, not the bytes
    job = await run_db(_row, request.principal.user_id, job_id)
    cost = usd_label(job.cost_usd) if job.cost_usd is not None else None
    html = render_to_string(
        "media_jobs/_job.html",
        {"job": job, "data": data, "cost": cost, "media": data.get("image") or data.get("video")},
    )
    headers = {"HX-Trigger": "gallery-changed"} if job.is_terminal else {}
    return HttpResponse(html, headers=headers)
