"""Persistent chat sessions: ownership, CRUD and the JSON shapes of chats and their messages.

A chat belongs to one user; every lookup filters by owner, so another user's chat does not
exist for the caller (404 chat_not_found, never 403). Turns are added by llm.chat_turns (text)
and llm.chat_images (image turns, whose stored file reference is rendered as a fresh signed URL by
the image-jobs service, llm.image_jobs).
"""

from django.db.models import Count
from django.utils import timezone

from accounts.keys import Principal
from gpuniq_site.errors import ApiError
from . import image_jobs
from .catalog import DEFAULT_CHAT_MODEL, snapshot
from .models import Chat, ChatMessage

MAX_ID = 2**63 - 1  # larger ids cannot exist (and would overflow a bigint parameter)
DEFAULT_TITLE = "New chat"


def find_chat(user_id: int, chat_id: int) -> Chat:
    chat = Chat.objects.filter(pk=chat_id, user_id=user_id).first() if 0 < chat_id <= MAX_ID else None
    if chat is None:
        raise ApiError("chat_not_found", meta={"chat_id": chat_id})
    return chat


def check_chat_model(principal: Principal, slug: str) -> str:
    """A chat's default model must be an available chat model this key may use."""
    model = snapshot().models.get(slug)
    if model is None or not model.available:
        raise ApiError("model_not_found", model=slug, meta={"model": slug})
    if model.kind != "chat":
        raise ApiError("wrong_model_kind", model=slug, kind=model.kind)
    if not principal.may_use(slug):
        raise ApiError("model_not_allowed", model=slug)
    return slug


def create_chat(
    principal: Principal, *, model: str | None = None, title: str | None = None, system_prompt: str = ""
) -> Chat:
    slug = check_chat_model(principal, model or DEFAULT_CHAT_MODEL)
    return Chat.objects.create(
        user_id=principal.user_id, model=slug, title=title or DEFAULT_TITLE, system_prompt=system_prompt or ""
    )


def update_chat(principal: Principal, chat_id: int, changes: dict) -> Chat:
    chat = find_chat(principal.user_id, chat_id)
    if "model" in changes:
        chat.model = check_chat_model(principal, changes["model"])
    if "title" in changes:
        chat.title = changes["title"] or DEFAULT_TITLE
    if "system_prompt" in changes:
        chat.system_prompt = changes["system_prompt"] or ""
    chat.save(update_fields=["model", "title", "system_prompt", "updated_at"])
    return chat


def delete_chat(user_id: int, chat_id: int) -> None:
    find_chat(user_id, chat_id).delete()


def list_chats(user_id: int, *, limit: int, offset: int) -> dict:
    chats = Chat.objects.filter(user_id=user_id)
    page = chats.order_by("-created_at", "-id").annotate(message_count=Count("messages"))[
        offset : offset + limit
    ]
    return {
        "chats": [chat_payload(c, message_count=c.message_count) for c in page],
        "total": chats.count(),
        "limit": limit,
        "offset": offset,
    }


def chat_detail(user_id: int, chat_id: int) -> dict:
    chat = find_chat(user_id, chat_id)
    messages = [message_payload(m) for m in ChatMessage.objects.filter(chat=chat).order_by("id")]
    return {**chat_payload(chat, message_count=len(messages)), "messages": messages}


def chat_payload(chat: Chat, *, message_count: int | None = None) -> dict:
    data = {
        "id": chat.pk,
        "title": chat.title,
        "model": chat.model,
        "system_prompt": chat.system_prompt,
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
    }
    if message_count is not None:
        data["message_count"] = message_count
    return data


def message_payload(m: ChatMessage) -> dict:
    data = {
        "id": m.pk,
        "role": m.role,
        "kind": m.kind,
        "status": m.status,
        "content": m.content,
        "model": m.model,
        "tokens": m.tokens,
        "prompt_tokens": m.prompt_tokens,
        "completion_tokens": m.completion_tokens,
        "cached_tokens": m.cached_tokens,
        "reasoning_tokens": m.reasoning_tokens,
        "total_tokens": m.prompt_tokens + m.completion_tokens,
        "cost_usd": float(m.cost_usd),
        "finish_reason": m.finish_reason or None,
        "truncated_turns": m.truncated_turns,
        "request_id": m.request_id,
        "created_at": m.created_at.isoformat(),
    }
    if m.kind == ChatMessage.IMAGE:
        data.update(job_id=m.job_id, image=image_payload(m.image), error=m.error)
    return data


def image_payload(ref: dict | None) -> dict | None:
    """A stored image reference (llm.chat_images) → a fresh signed link to the file."""
    if not ref or not ref.get("path"):
        return None
    return {
        "url": image_jobs.service().file_url(ref["path"]),
        "mime_type": ref.get("mime_type"),
        "asset_id": ref.get("asset_id"),
    }


def touch(chat_id: int) -> bool:
    """Mark the chat as changed now; False when it was deleted meanwhile."""
    return bool(Chat.objects.filter(pk=chat_id).update(updated_at=timezone.now()))
