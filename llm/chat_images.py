"""Image turns in a persistent chat, on the image-jobs machinery (media_jobs, reached through the
service it registers: llm.image_jobs).

Kickoff: POST /v1/llm/chats/{id}/messages with an image model starts a media image job through
the service's `start`, the operation behind POST /v1/llm/images/jobs (validated, the
price held at kickoff, queued after commit, run by the worker). In the transaction that inserts
the job row, the user turn (the prompt) and an assistant placeholder (kind "image", status
"pending", job_id) are written, so a kickoff either leaves all three or nothing (hold released).
The reply, at once (202): {type: "image_pending", job_id, dialogue_id (the placeholder's id), ...}.

Polls: GET /v1/llm/chats/{id}/image-jobs/{job_id} reads the job through the service's `read`
(polls coalesced; the first read of a completion settles the hold, once, and writes the usage
row). The first poll that sees the job terminal rewrites the placeholder: completed, with a
reference to the stored file (MediaAsset id, path, mime type) and the cost, or failed, with the
error (nothing charged). From then on the endpoint answers 404 job_not_found and the chat
history is the truth (an image turn carries a fresh signed URL on every read). Until a poll sees
the job end, the placeholder stays pending: an image is delivered, and paid for, only through a
poll (this endpoint, or GET /v1/llm/images/jobs/{job_id}: either way it is charged once).

Models: the image-jobs surface's (Nano Banana). Other image models are 400 wrong_model_kind with
meta.field "model"; chat-only options (temperature, top_p, max_tokens, stream) are 400
unsupported_parameter; size, quality, output_format and input_images pass through to the job.

In the history sent to chat models on later text turns, an image turn is assistant text: its
`content`, kept as "[image generated: <prompt>]" (while pending "[image generation pending:
<prompt>]", failed "[image generation failed: <prompt>]"), so the model knows what was asked
and whether it happened, turns keep alternating, and the history shows what the model sees.
"""

import logging
from functools import partial
from typing import Any

from django.utils import timezone

from accounts.keys import Principal
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import could_be_id

from . import chats, image_jobs
from .catalog import asnapshot
from .chat_turns import TurnInput, estimate_tokens
from .models import Chat, ChatMessage

log = logging.getLogger("gpuniq.chat_images")
IMAGE_OPTIONS = ("size", "quality", "output_format", "input_images")
CHAT_ONLY = ("temperature", "top_p", "max_tokens")
KEY_PREFIX = "chat:{chat_id}:"
_STANDIN = {
    ChatMessage.PENDING: "[image generation pending: {prompt}]",
    ChatMessage.COMPLETED: "[image generated: {prompt}]",
    ChatMessage.FAILED: "[image generation failed: {prompt}]",
}


def standin(status: str, prompt: str) -> str:
    """What a chat model sees of an image turn (and the placeholder's content)."""
    return _STANDIN[status].format(prompt=prompt)


async def is_image_model(slug: str) -> bool:
    model = (await asnapshot()).models.get(slug)
    return model is not None and model.kind == "image"


def _check(slug: str, turn: TurnInput) -> None:
    """Refusals before anything is fetched or held."""
    service = image_jobs.service()
    if not service.accepts(slug):
        raise ApiError(
            "wrong_model_kind",
            f"'{slug}' is an image model that chat sessions cannot run: image "
            "turns take the Nano Banana models (nano-banana, nano-banana-2, nano-banana-pro, "
            "nano-banana-pro-4k); use POST /v1/llm/images/generations for the others.",
            model=slug,
            kind="image",
            meta={"field": "model", "model": slug},
        )
    if turn.options.get("stream"):
        raise ApiError(
            "unsupported_parameter",
            field="stream",
            model=slug,
            reason="image turns are not streamed; poll GET /v1/llm/chats/{chat_id}/image-jobs/{job_id}",
            meta={"field": "stream", "model": slug},
        )
    for name in CHAT_ONLY:
        if name in turn.options:
            raise ApiError(
                "unsupported_parameter",
                field=name,
                model=slug,
                reason="image turns take size, quality, output_format and input_images",
                meta={"field": name, "model": slug},
            )
    if len(turn.message) > service.max_prompt:
        raise ApiError(
            "invalid_parameter",
            field="message",
            reason=f"an image prompt is at most {service.max_prompt} characters",
            meta={"field": "message"},
        )


def idempotency_key(chat_id: int, key: str) -> str:
    """Keys are per chat, apart from the image-jobs API's (the column holds 200 characters)."""
    if not key:
        return ""
    prefix = KEY_PREFIX.format(chat_id=chat_id)
    return prefix + key[: 200 - len(prefix)]


def record_turn(chat_id: int, request_id: str, job: image_jobs.ImageJob) -> None:
    """The user turn and the placeholder, in the transaction that inserts the job."""
    if not chats.touch(chat_id):
        raise ApiError("chat_not_found", meta={"chat_id": chat_id})
    prompt = job.prompt
    ChatMessage.objects.create(
        chat_id=chat_id,
        role=ChatMessage.USER,
        content=prompt,
        model=job.model,
        tokens=estimate_tokens(prompt),
        request_id=request_id,
    )
    content = standin(ChatMessage.PENDING, prompt)
    ChatMessage.objects.create(
        chat_id=chat_id,
        role=ChatMessage.ASSISTANT,
        kind=ChatMessage.IMAGE,
        status=ChatMessage.PENDING,
        content=content,
        model=job.model,
        tokens=estimate_tokens(content),
        request_id=request_id,
        job_id=job.id,
    )


def _turn_of(chat_id: int, job_id: str) -> tuple[ChatMessage, int | None] | None:
    """The placeholder of `job_id` in the chat, and the user turn written with it."""
    placeholder = ChatMessage.objects.filter(chat_id=chat_id, kind=ChatMessage.IMAGE, job_id=job_id).first()
    if placeholder is None:
        return None
    user = (
        ChatMessage.objects.filter(
            chat_id=chat_id, role=ChatMessage.USER, id__lt=placeholder.pk, request_id=placeholder.request_id
        )
        .order_by("-id")
        .first()
    )
    return placeholder, user.pk if user else None


async def start(
    principal: Principal, chat: Chat, turn: TurnInput, body: dict, *, request_id: str, key: str = ""
) -> dict:
    """Kick off an image turn; the kickoff payload (a replay of an Idempotency-Key gives the first)."""
    slug = turn.model or chat.model
    _check(slug, turn)
    job_body = {
        "model": slug,
        "prompt": turn.message,
        "n": 1,
        **{name: body[name] for name in IMAGE_OPTIONS if body.get(name) is not None},
    }
    job = await image_jobs.service().start(
        principal,
        job_body,
        request_id=request_id,
        key=idempotency_key(chat.pk, key),
        on_record=partial(record_turn, chat.pk, request_id),
    )
    found = await run_db(_turn_of, chat.pk, job.id)
    if found is None:  # the key names a job of the image-jobs API or of another chat
        raise ApiError("idempotency_conflict", meta={"job_id": job.id})
    placeholder, user_message_id = found
    return {
        "type": "image_pending",
        "job_id": job.id,
        "dialogue_id": placeholder.pk,
        "chat_id": chat.pk,
        "user_message_id": user_message_id,
        "status": placeholder.status,
        "model": job.model,
        "estimated_cost_usd": float(job.estimated_cost_usd),
    }


def _pending_turn(user_id: int, chat_id: int, job_id: str) -> ChatMessage:
    """The caller's placeholder for `job_id`, while no poll has seen the job end."""
    chat = chats.find_chat(user_id, chat_id)
    if not could_be_id(job_id, prefix="img_", max_length=40):
        raise ApiError("job_not_found")
    placeholder = ChatMessage.objects.filter(chat=chat, kind=ChatMessage.IMAGE, job_id=job_id).first()
    if placeholder is None or placeholder.status != ChatMessage.PENDING:
        raise ApiError("job_not_found")
    return placeholder


def finish_turn(message_id: int, job_id: str) -> bool:
    """Rewrite a pending placeholder from its ended job (once); False if it was not pending or the
    job has not ended (a completion counts once it is charged)."""
    end = image_jobs.service().ended(job_id)
    if end is None:
        return False
    changes: dict[str, Any]
    if end.completed:
        changes = {"status": ChatMessage.COMPLETED, "cost_usd": end.cost_usd, "image": end.image}
    else:
        changes = {"status": ChatMessage.FAILED, "error": end.error}
    content = standin(changes["status"], end.prompt)
    done = ChatMessage.objects.filter(pk=message_id, status=ChatMessage.PENDING).update(
        content=content, tokens=estimate_tokens(content), updated_at=timezone.now(), **changes
    )
    if done:
        chats.touch(ChatMessage.objects.get(pk=message_id).chat_id)
    return bool(done)


async def poll(principal: Principal, chat_id: int, job_id: str) -> tuple[dict, bool]:
    """(payload, coalesced?) for a poll of the image turn `job_id` in chat `chat_id`."""
    placeholder = await run_db(_pending_turn, principal.user_id, chat_id, job_id)
    data, shared = await image_jobs.service().read(principal, job_id)
    data = {**data, "chat_id": chat_id, "dialogue_id": placeholder.pk}
    if data["status"] in image_jobs.ENDED:
        await run_db(finish_turn, placeholder.pk, job_id)
    return data, shared
