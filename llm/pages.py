"""The web chat: /chat/ and /chat/<id>/ with htmx partials for the chat list (search, rename,
delete), the transcript and image turns, and the streamed send endpoint (static/js/chat.js).

Same sessions as the native API (llm.models.Chat of the signed-in user; another user's chat is a
404); money and storage through llm.web_chat, which calls the API's own functions.
"""

from collections.abc import AsyncIterator
from typing import cast

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.keys import dashboard_principal
from accounts.web import dashboard_endpoint, member_page
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import EventStreamResponse

from . import chat_stop as chat_stop_flags
from . import chats, web_chat
from .catalog import DEFAULT_CHAT_MODEL
from .models import Chat

TITLE_MAX = 200


def _own_chat(request, chat_id: int) -> Chat:
    try:
        return chats.find_chat(request.user.pk, chat_id)
    except ApiError:
        raise Http404("no such chat") from None


def _page_context(request, chat: Chat | None) -> dict:
    principal = dashboard_principal(request.user)
    query = request.GET.get("q", "")
    context = {
        "chats": web_chat.chat_list(request.user.pk, query),
        "q": query,
        "chat": chat,
        "models": web_chat.model_choices(principal),
        "default_model": DEFAULT_CHAT_MODEL,
    }
    if chat is not None:
        context["messages_"] = web_chat.transcript(request.user.pk, chat.pk)[1]
    return context


@member_page
@require_GET
def chat_home(request):
    return render(request, "llm/chat.html", _page_context(request, None))


@member_page
@require_GET
def chat_session(request, chat_id: int):
    return render(request, "llm/chat.html", _page_context(request, _own_chat(request, chat_id)))


@member_page
@require_GET
def chat_list(request):
    q = request.GET.get("q", "")
    current = request.GET.get("current", "")
    # ASCII digits only: isdigit() passes '²', which int() refuses (as it does past 4,300 digits)
    current_id = int(current) if current.isascii() and current.isdigit() and len(current) < 19 else None
    return render(
        request,
        "llm/_chat_list.html",
        {
            "chats": web_chat.chat_list(request.user.pk, q),
            "q": q,
            "current_id": current_id,
        },
    )


@member_page
@require_POST
def chat_new(request):
    principal = dashboard_principal(request.user)
    model = request.POST.get("model") or None
    try:
        session = chats.create_chat(
            principal, model=model if model and model in _chat_slugs(principal) else None
        )
    except ApiError as error:
        messages.error(request, error.message)
        return redirect("chat")
    url = reverse("chat-session", args=[session.pk])
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


def _chat_slugs(principal) -> set[str]:
    return {c.slug for c in web_chat.model_choices(principal)["chat"]}


@member_page
@require_http_methods(["GET", "POST"])
def chat_rename(request, chat_id: int):
    session = _own_chat(request, chat_id)
    if request.method == "POST":
        # NUL: PostgreSQL's text refuses it; the rest of the title is kept
        title = request.POST.get("title", "").replace("\x00", "").strip()[:TITLE_MAX]
        session = chats.update_chat(dashboard_principal(request.user), chat_id, {"title": title})
        if not request.htmx:
            return redirect("chat-session", chat_id)
        current = request.POST.get("current") == "1"
        return render(
            request, "llm/_chat_item.html", {"c": session, "current_id": chat_id if current else None}
        )
    return render(request, "llm/_chat_rename.html", {"c": session})


@member_page
@require_GET
def chat_item(request, chat_id: int):
    current = request.GET.get("current") == "1"
    return render(
        request,
        "llm/_chat_item.html",
        {"c": _own_chat(request, chat_id), "current_id": chat_id if current else None},
    )


@member_page
@require_POST
def chat_delete(request, chat_id: int):
    _own_chat(request, chat_id)
    chats.delete_chat(request.user.pk, chat_id)
    if request.htmx and request.POST.get("current") != "1":
        return HttpResponse("")  # the list item swaps itself out
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": reverse("chat")})
    messages.success(request, "Chat deleted.")
    return redirect("chat")


@member_page
@require_GET
def chat_transcript(request, chat_id: int):
    _own_chat(request, chat_id)
    return HttpResponse(web_chat.render_transcript(request.user.pk, chat_id))


@require_POST
@dashboard_endpoint
async def chat_send(request, chat_id: int):
    body = web_chat.turn_body(request.POST)
    if request.headers.get("HX-Request"):
        return await web_chat.send_turn(request.principal, chat_id, body, request.request_id)
    # A plain form post (no JavaScript): wait for the whole reply, which stores the turn, then
    # show the chat page with it (post/redirect/get); a refusal comes back as a message on it.
    try:
        response = await web_chat.send_turn(request.principal, chat_id, body, request.request_id)
        if isinstance(response, EventStreamResponse):
            async for _ in cast(AsyncIterator[bytes], response.streaming_content):  # an async stream
                pass
    except ApiError as error:
        if error.status == 404:  # another user's chat (or none): no page to go back to
            raise
        await sync_to_async(messages.error)(request, error.message)
    return redirect("chat-session", chat_id=chat_id)


@require_POST
@dashboard_endpoint(counted=False)
async def chat_stop(request, chat_id: int):
    """The Stop button: the reply with this request id ends at its next event and is kept."""
    await chat_stop_flags.request_stop(request.principal.user_id, request.POST.get("request_id", ""))
    return HttpResponse(status=204)


@require_GET
@dashboard_endpoint(counted=False)
async def chat_image(request, chat_id: int, message_id: int):
    return HttpResponse(await web_chat.image_turn(request.principal, chat_id, message_id))
