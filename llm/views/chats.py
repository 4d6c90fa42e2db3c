"""Chat sessions: CRUD on /v1/llm/chats (DRF), POST /v1/llm/chats/{id}/messages and
GET /v1/llm/chats/{id}/image-jobs/{job_id} (async hot paths)."""

from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from accounts.guard import key_required
from gpuniq_site.db import run_db
from gpuniq_site.responses import native_ok

from .. import chat, chat_images, chat_turns, chats
from .. import serializers as s
from ..validation import parse_body
from ..completions import complete_once, native_reply, start_stream
from ..completions import sandbox_headers as _headers

TAG = ["Chat sessions"]
CHAT_ID = OpenApiParameter("chat_id", int, OpenApiParameter.PATH, description="the chat's id")


def valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ChatListView(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="chats_list",
        summary="List your chats, newest first",
        parameters=[s.PageQuery],
        responses=s.envelope("ChatListResponse", s.ChatListOut()),
    )
    def get(self, request):
        page = valid(s.PageQuery, request.query_params)
        return native_ok(request, chats.list_chats(request.user.principal.user_id, **page))

    @extend_schema(
        tags=TAG,
        operation_id="chat_create",
        summary="Create a chat",
        request=s.ChatCreate,
        responses={201: s.envelope("ChatResponse", s.ChatOut())},
    )
    def post(self, request):
        fields = valid(s.ChatCreate, request.data)
        chat_row = chats.create_chat(request.user.principal, **fields)
        return native_ok(request, chats.chat_payload(chat_row, message_count=0), status=201)


class ChatDetailView(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="chat_get",
        summary="A chat with its full message history",
        parameters=[CHAT_ID],
        responses=s.envelope("ChatDetailResponse", s.ChatDetailOut()),
    )
    def get(self, request, chat_id: int):
        return native_ok(request, chats.chat_detail(request.user.principal.user_id, chat_id))

    @extend_schema(
        tags=TAG,
        operation_id="chat_update",
        summary="Rename a chat or change its model",
        parameters=[CHAT_ID],
        request=s.ChatUpdate,
        responses=s.envelope("ChatUpdateResponse", s.ChatOut()),
    )
    def patch(self, request, chat_id: int):
        changes = valid(s.ChatUpdate, request.data)
        return native_ok(
            request, chats.chat_payload(chats.update_chat(request.user.principal, chat_id, changes))
        )

    @extend_schema(
        tags=TAG,
        operation_id="chat_delete",
        summary="Delete a chat and its messages",
        parameters=[CHAT_ID],
        responses={200: s.envelope("ChatDeletedResponse", s.DeletedOut())},
    )
    def delete(self, request, chat_id: int):
        chats.delete_chat(request.user.principal.user_id, chat_id)
        return native_ok(request, {"id": chat_id, "deleted": True})


@require_POST
@key_required
async def send_message(request, chat_id: int):
    """The model sees the stored history plus this message; the turn is stored once paid for.
    With an image model the turn is an image job (llm.chat_images): 202 image_pending at once."""
    principal = request.principal
    body = parse_body(request.body)
    turn = chat_turns.parse_turn(body)
    session = await run_db(chats.find_chat, principal.user_id, chat_id)
    if await chat_images.is_image_model(turn.model or session.model):
        data = await chat_images.start(
            principal,
            session,
            turn,
            body,
            request_id=request.request_id,
            key=request.headers.get("Idempotency-Key", "").strip(),
        )
        return native_ok(request, data, status=202)
    model = await chat.resolve_model(turn.model or session.model, principal, endpoint="chat_session")
    plan = await run_db(chat_turns.plan_turn, session, model, turn)
    prepared = await chat.prepare(
        principal, plan.body, request_id=request.request_id, endpoint="chat_session"
    )
    if prepared.request.stream:
        prepared.request.include_usage = True
        response = await start_stream(prepared)
        response.streaming_content = chat_turns.record_stream(
            response.streaming_content, plan, principal.user_id, request.request_id
        )
        response["x-gpuniq-truncated-turns"] = str(plan.truncated)
        return response
    completion, usage, settled, route = await complete_once(prepared)
    data = native_reply(completion, usage, settled, model.slug)
    reply = chat_turns.Reply(
        data["content"], data["finish_reason"] or "", usage, settled.cost, request.request_id
    )
    ids = await run_db(chat_turns.store_turn, plan, reply)
    data.update(
        chat_id=plan.chat_id,
        truncated_turns=plan.truncated,
        user_message_id=ids and ids[0],
        message_id=ids and ids[1],
    )
    return native_ok(request, data, headers=_headers(route))


@require_GET
@key_required
async def image_job(request, chat_id: int, job_id: str):
    """An image turn's job: progress, then (once) the image and the charge; 404 once a poll saw it end."""
    data, shared = await chat_images.poll(request.principal, chat_id, job_id)
    headers = {"x-gpuniq-coalesced": "true"} if shared else {}
    if data.get("simulated"):
        headers["x-gpuniq-simulated"] = "true"
    return native_ok(request, data, headers=headers)
