"""The web chat's operations: the native chat-session API's functions (llm.chats, llm.chat_turns,
llm.chat_images, llm.chat) called with the signed-in user's dashboard principal
(accounts.keys.dashboard_principal), so a web turn is held, settled, logged and stored exactly
like an API turn. The views (llm.pages) stay thin; this module also shapes what templates show.
"""

from dataclasses import dataclass

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from accounts.keys import Principal
from billing.money import format_usd
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import EventStreamResponse

from . import chat, chat_images, chat_stop, chat_turns, chats, image_jobs
from .catalog import snapshot
from .markdown import to_html
from .models import Chat, ChatMessage
from .completions import start_stream

CHAT_LIST_LIMIT = 100
TITLE_CHARS = 60


# --- what the pages show -----------------------------------------------------------------


@dataclass
class ModelChoice:
    slug: str
    name: str
    kind: str  # chat | image
    price: str


def _per_m(value) -> str:
    return format_usd(value) if value is not None else "–"


def model_choices(principal: Principal) -> dict[str, list[ModelChoice]]:
    """The picker: available chat models and the image models image jobs run (Nano Banana), with
    their prices."""
    groups: dict[str, list[ModelChoice]] = {"chat": [], "image": []}
    jobs = image_jobs.service()
    for m in snapshot().models.values():
        if not m.available or not principal.may_use(m.slug):
            continue
        if m.kind == "chat":
            price = f"{_per_m(m.input_per_mtok)} in · {_per_m(m.output_per_mtok)} out / 1M tokens"
            groups["chat"].append(ModelChoice(m.slug, m.name, "chat", price))
        elif m.kind == "image" and jobs.accepts(m.slug):
            groups["image"].append(ModelChoice(m.slug, m.name, "image", f"{_per_m(m.per_image)} / image"))
    return groups


def chat_list(user_id: int, query: str = "") -> list[Chat]:
    chats_ = Chat.objects.filter(user_id=user_id)
    query = query.replace("\x00", "").strip()  # no title holds a NUL, and PostgreSQL refuses one in text
    if query:
        chats_ = chats_.filter(title__icontains=query)
    return list(chats_.order_by("-updated_at", "-id")[:CHAT_LIST_LIMIT])


@dataclass
class MessageView:
    message: ChatMessage
    html: str
    image: dict | None

    @property
    def cost_label(self) -> str:
        return usd_label(self.message.cost_usd)

    @property
    def pending(self) -> bool:
        return self.message.kind == ChatMessage.IMAGE and self.message.status == ChatMessage.PENDING


def usd_label(value) -> str:
    """$0.000123 style: enough places for a fraction of a cent, no trailing zeros."""
    return format_usd(value or 0)


def message_view(m: ChatMessage) -> MessageView:
    """User text is shown as typed (escaped by the template); replies as sanitised Markdown."""
    html = (
        mark_safe(to_html(m.content))
        if m.role == ChatMessage.ASSISTANT and m.kind == ChatMessage.TEXT
        else ""
    )
    image = chats.image_payload(m.image) if m.kind == ChatMessage.IMAGE else None
    return MessageView(m, html, image)


def transcript(user_id: int, chat_id: int) -> tuple[Chat, list[MessageView]]:
    session = chats.find_chat(user_id, chat_id)
    return session, [message_view(m) for m in ChatMessage.objects.filter(chat=session).order_by("id")]


def render_transcript(user_id: int, chat_id: int) -> str:
    session, messages = transcript(user_id, chat_id)
    return render_to_string("llm/_transcript.html", {"chat": session, "messages": messages})


# --- turns -------------------------------------------------------------------------------

EFFORTS = ("low", "medium", "high")


def _number(post, name: str, cast, low, high):
    raw = (post.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(
            "invalid_parameter",
            field=name,
            reason=f"must be a number from {low} to {high}",
            meta={"field": name},
        )
    return value


def turn_body(post) -> dict:
    """The form's fields as the native API's JSON body (every turn from the page streams), with the
    playground's settings: system prompt, temperature, max tokens, reasoning effort."""
    body = {"message": post.get("message", ""), "model": post.get("model") or None}
    for name in ("size", "output_format"):
        if post.get(name):
            body[name] = post[name]
    if "system_prompt" in post:
        body["system_prompt"] = chat_turns.clean_text(
            post.get("system_prompt", ""), "system_prompt", required=False, max_chars=100_000
        )
    for name, cast, low, high in (("temperature", float, 0, 2), ("max_tokens", int, 1, 1_000_000)):
        value = _number(post, name, cast, low, high)
        if value is not None:
            body[name] = value
    if post.get("reasoning_effort") in EFFORTS:
        body["reasoning_effort"] = post["reasoning_effort"]
    return body


def _keep_system_prompt(session: Chat, body: dict) -> Chat:
    """The settings' system prompt becomes the chat's (the API's PATCH /chats/{id} does the same)."""
    if "system_prompt" in body and (body["system_prompt"] or "") != session.system_prompt:
        session.system_prompt = body["system_prompt"] or ""
        session.save(update_fields=["system_prompt", "updated_at"])
    return session


async def send_turn(
    principal: Principal, chat_id: int, body: dict, request_id: str
) -> HttpResponse | EventStreamResponse:
    """A text turn: the SSE stream of the reply (stored when it ends well, billed whatever happens).
    An image turn: the transcript with its pending placeholder, which polls until the image is there."""
    turn = chat_turns.parse_turn(body)
    session = await run_db(chats.find_chat, principal.user_id, chat_id)
    if await chat_images.is_image_model(turn.model or session.model):
        image_body = {k: v for k, v in body.items() if k in chat_images.IMAGE_OPTIONS}
        await chat_images.start(principal, session, turn, image_body, request_id=request_id)
        return HttpResponse(await run_db(render_transcript, principal.user_id, chat_id))
    await run_db(_auto_title, session, turn.message)
    session = await run_db(_keep_system_prompt, session, body)
    turn.options["stream"] = True
    model = await chat.resolve_model(turn.model or session.model, principal, endpoint="chat_session")
    plan = await run_db(chat_turns.plan_turn, session, model, turn)
    prepared = await chat.prepare(principal, plan.body, request_id=request_id, endpoint="chat_session")
    prepared.request.include_usage = True
    response = await start_stream(prepared)
    response.streaming_content = chat_turns.record_stream(
        response.streaming_content,
        plan,
        principal.user_id,
        request_id,
        chat_stop.checker(principal.user_id, request_id),
    )
    return response


def _auto_title(session: Chat, message: str) -> None:
    """A new chat takes its first message's opening words as its title (the list is searchable)."""
    if session.title == chats.DEFAULT_TITLE and not session.messages.exists():
        title = " ".join(message.split())[:TITLE_CHARS].strip() or chats.DEFAULT_TITLE
        Chat.objects.filter(pk=session.pk, title=chats.DEFAULT_TITLE).update(title=title)


def _message(user_id: int, chat_id: int, message_id: int) -> MessageView:
    session = chats.find_chat(user_id, chat_id)
    m = ChatMessage.objects.filter(chat=session, pk=message_id).first()
    if m is None:
        raise ApiError("not_found", method="GET", path="message")
    return message_view(m)


async def image_turn(principal: Principal, chat_id: int, message_id: int) -> str:
    """The image turn's bubble; while pending, one poll of its job through the API's logic
    (llm.chat_images.poll: the first read of the end charges once and rewrites the placeholder)."""
    view = await run_db(_message, principal.user_id, chat_id, message_id)
    if view.pending and view.message.job_id:
        try:
            await chat_images.poll(principal, chat_id, view.message.job_id)
        except ApiError as error:
            if error.code != "job_not_found":  # another poll saw the end first: the row is the truth
                raise
        view = await run_db(_message, principal.user_id, chat_id, message_id)
    return render_to_string("llm/_message.html", {"m": view, "chat_id": chat_id})
