"""Hand-written OpenAPI path items for the native API's async (non-DRF) views, which
drf-spectacular cannot see; llm.openapi adds them to the generated schema.

Another app documents its async routes the same way: an `<app>/openapi_paths.py` defining
`PATHS` (path → path item) and optionally `SCHEMAS` (component name → schema).
"""


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple = (), **props) -> dict:
    return {"type": "object", "required": list(required), "properties": props}


def enveloped(data: dict) -> dict:
    return obj(
        ("success", "data", "request_id"),
        success={"type": "boolean"},
        data=data,
        request_id={"type": "string"},
    )


INT, NUM, STR, BOOL = {"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}
ERRORS = {
    400: "Invalid request",
    401: "Missing or invalid API key",
    402: "Insufficient balance",
    403: "Not allowed for this key",
    404: "Not found",
    429: "Rate limited",
    502: "Upstream error",
    503: "Upstream unavailable",
    504: "Upstream timeout",
}


def op(
    summary: str,
    tag: str,
    *,
    ok: dict,
    body: dict | None = None,
    status: int = 200,
    params: tuple = (),
    auth: bool = True,
    errors: tuple = (400, 401, 402, 403, 404, 429, 502, 503, 504),
    description: str = "",
    operation_id: str,
) -> dict:
    responses = {
        str(status): {"description": "OK", "content": {"application/json": {"schema": enveloped(ok)}}}
    }
    for code in errors if auth else ():
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": ref("ErrorEnvelope")}},
        }
    item = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": list(params),
        "responses": responses,
        "security": [{"ApiKeyAuth": []}, {"BearerAuth": []}] if auth else [],
    }
    if body is not None:
        item["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return item


def with_response(item: dict, status: int, description: str, data: dict) -> dict:
    """Another success answer of an operation (e.g. 202 beside 200)."""
    item["responses"][str(status)] = {
        "description": description,
        "content": {"application/json": {"schema": enveloped(data)}},
    }
    return item


def path_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


USAGE_FIELDS = dict(
    tokens_used=INT,
    prompt_tokens=INT,
    completion_tokens=INT,
    cached_tokens=INT,
    reasoning_tokens=INT,
    cost_usd=NUM,
    balance_usd=NUM,
)
SCHEMAS = {
    "ErrorEnvelope": obj(
        ("success", "error", "status_code", "request_id"),
        success={"type": "boolean"},
        error=obj(
            ("message", "type", "code"), message=STR, type=STR, code=STR, doc_url=STR, meta={"type": "object"}
        ),
        status_code=INT,
        request_id=STR,
    ),
    "ChatMessageIn": {
        **obj(
            ("role",),
            role={"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
            content={"oneOf": [STR, {"type": "array", "items": {"type": "object"}}]},
        ),
        "additionalProperties": True,
    },
    "ChatCompletionRequest": {
        **obj(
            ("messages",),
            messages={"type": "array", "items": ref("ChatMessageIn"), "minItems": 1},
            model={**STR, "default": "claude-haiku-4-5"},
            temperature={**NUM, "minimum": 0, "maximum": 2},
            top_p={**NUM, "minimum": 0, "maximum": 1},
            max_tokens={**INT, "minimum": 1},
            stream=BOOL,
        ),
        "additionalProperties": True,
        "description": "Any other Chat Completions field is forwarded to the model.",
    },
    "ChatReply": obj(
        ("content", "model"),
        content=STR,
        model=STR,
        finish_reason={"type": "string", "nullable": True},
        reasoning_content=STR,
        tool_calls={"type": "array", "items": {"type": "object"}},
        **USAGE_FIELDS,
    ),
    "ChatJob": obj(
        ("job_id", "status"),
        job_id=STR,
        status={"type": "string", "enum": ["pending", "running", "completed", "failed"]},
        model=STR,
        created_at=STR,
        finished_at={"type": "string", "nullable": True},
        result=ref("ChatReply"),
        content=STR,
        cost_usd=NUM,
        balance_usd=NUM,
        error={"type": "object"},
    ),
    "ModelList": obj(
        ("models",), models={"type": "array", "items": {"type": "object"}}, default_model=STR, count=INT
    ),
    "Balance": obj(
        ("balance_usd", "held_usd", "total_usd"),
        balance_usd={**NUM, "description": "spendable now (total minus held)"},
        held_usd={**NUM, "description": "reserved by requests and jobs in flight"},
        total_usd={**NUM, "description": "owned, including held amounts"},
        currency=STR,
    ),
    "ChatTurnRequest": obj(
        ("message",),
        message={**STR, "minLength": 1},
        model=STR,
        temperature={**NUM, "minimum": 0, "maximum": 2},
        top_p={**NUM, "minimum": 0, "maximum": 1},
        max_tokens={**INT, "minimum": 1},
        stream=BOOL,
        size={**STR, "description": "image turns only, e.g. 1024x1024"},
        quality={**STR, "description": "image turns only"},
        output_format={
            "type": "string",
            "enum": ["png", "jpeg", "jpg", "webp"],
            "description": "image turns only",
        },
        input_images={"type": "array", "items": STR, "description": "image turns only"},
    ),
    "ChatTurnReply": {
        "allOf": [
            ref("ChatReply"),
            obj(
                (),
                chat_id=INT,
                user_message_id={**INT, "nullable": True},
                message_id={**INT, "nullable": True},
                truncated_turns={**INT, "description": "stored messages left out to fit the context window"},
            ),
        ]
    },
    "TerminalCommandsRequest": obj(
        ("prompt",),
        prompt={**STR, "minLength": 1, "maxLength": 4000},
        max_commands={**INT, "minimum": 1, "maximum": 10, "default": 5},
        shell={**STR, "default": "bash"},
        os={**STR, "default": "linux"},
        model={**STR, "default": "claude-haiku-4-5"},
    ),
    "TerminalCommand": obj(
        ("command", "description", "danger"),
        command=STR,
        description=STR,
        danger={"type": "string", "enum": ["safe", "caution", "dangerous"]},
        danger_reasons={"type": "array", "items": STR},
    ),
    "TerminalCommands": obj(
        ("commands",),
        commands={"type": "array", "items": ref("TerminalCommand")},
        model=STR,
        tokens_used=INT,
        prompt_tokens=INT,
        completion_tokens=INT,
        cost_usd=NUM,
        balance_usd=NUM,
    ),
}

SCHEMAS.update(
    {
        "ChatImagePending": obj(
            ("type", "job_id", "dialogue_id"),
            type={"type": "string", "enum": ["image_pending"]},
            job_id=STR,
            dialogue_id={**INT, "description": "the id of the image turn's placeholder in the chat history"},
            chat_id=INT,
            user_message_id={**INT, "nullable": True},
            status={"type": "string", "enum": ["pending", "completed", "failed"]},
            model=STR,
            estimated_cost_usd=NUM,
        ),
        "ChatImageJob": {
            **obj(
                ("job_id", "status", "dialogue_id"),
                job_id=STR,
                dialogue_id=INT,
                chat_id=INT,
                model=STR,
                status={"type": "string", "enum": ["pending", "running", "completed", "failed"]},
                estimated_cost_usd=NUM,
                created_at=STR,
                finished_at={"type": "string", "nullable": True},
                image=obj((), b64_json=STR, url=STR, mime_type=STR),
                cost_usd=NUM,
                balance_usd=NUM,
                error={"type": "object"},
            ),
            "additionalProperties": True,
        },
    }
)
IMAGE_TURN_NOTE = (
    "With an image model (Nano Banana: nano-banana, nano-banana-2, nano-banana-pro, nano-banana-pro-4k; "
    'other image models are 400 wrong_model_kind) the answer is 202 at once: type "image_pending", job_id '
    "and dialogue_id, the placeholder that already lives in the history after the user turn. Poll GET "
    "/v1/llm/chats/{chat_id}/image-jobs/{job_id}. Image turns take size, quality, output_format and "
    "input_images; temperature, top_p, max_tokens and stream are 400 unsupported_parameter. Idempotency-Key "
    "makes the kickoff safe to retry. On later text turns the model sees an image turn as the assistant "
    'text "[image generated: <prompt>]" ("[image generation failed: <prompt>]", "[image generation pending: '
    '<prompt>]").'
)
IMAGE_POLL_NOTE = (
    "Progress of an image turn: pending, running, then completed or failed. The first poll that sees the "
    "job end rewrites the placeholder in the chat history: completed with the image (this answer carries "
    "image.b64_json, image.url, cost_usd, balance_usd; the balance is debited once, exactly as GET "
    "/v1/llm/images/jobs/{job_id}) or failed with the error (nothing charged). After that this endpoint is "
    "404 job_not_found: the chat history (GET /v1/llm/chats/{chat_id}) is the truth, its image turns "
    "carrying a fresh signed image URL and the cost. Polls within 2 seconds of each other are coalesced "
    "(x-gpuniq-coalesced)."
)
STREAM_NOTE = (
    'With "stream": true the answer is text/event-stream in OpenAI\'s chunk framing, ending with a '
    "usage chunk (with cost_usd) and data: [DONE]."
)
CHAT_ID = path_param("chat_id", INT, "the chat's id")
JOB_ID = path_param("job_id", STR, "the chat job's id")
WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {**NUM, "minimum": 0, "maximum": 30},
    "description": "long-poll up to this many seconds for the job to finish",
}

PATHS = {
    "/v1/llm/chat/completions": {
        "post": op(
            "Chat completion (wrapped reply)",
            "Chat",
            body=ref("ChatCompletionRequest"),
            ok=ref("ChatReply"),
            description=STREAM_NOTE,
            operation_id="chat_completion",
        )
    },
    "/v1/llm/chat/jobs": {
        "post": op(
            "Start a long-poll chat job",
            "Chat",
            body=ref("ChatCompletionRequest"),
            ok=ref("ChatJob"),
            status=202,
            description="For clients that cannot hold a stream open. "
            "Send Idempotency-Key to make retries safe.",
            operation_id="chat_job_create",
        )
    },
    "/v1/llm/chat/jobs/{job_id}": {
        "get": op(
            "A chat job (long poll with ?wait=)",
            "Chat",
            ok=ref("ChatJob"),
            params=(JOB_ID, WAIT),
            operation_id="chat_job_get",
        )
    },
    "/v1/llm/models": {
        "get": op("Available models with prices", "Models", ok=ref("ModelList"), operation_id="models_list")
    },
    "/v1/llm/models/catalog": {
        "get": op(
            "The public catalog (no key needed)",
            "Models",
            ok=ref("ModelList"),
            auth=False,
            operation_id="models_catalog",
        )
    },
    "/v1/llm/balance": {
        "get": op("Account balance in USD", "Billing", ok=ref("Balance"), operation_id="balance")
    },
    "/v1/llm/chats/{chat_id}/messages": {
        "post": with_response(
            op(
                "Send a message in a chat",
                "Chat sessions",
                body=ref("ChatTurnRequest"),
                ok=ref("ChatTurnReply"),
                params=(CHAT_ID,),
                operation_id="chat_send_message",
                description="The model sees the stored history plus this message; the oldest turns are left "
                "out when the history exceeds the context window (truncated_turns; x-gpuniq-truncated-turns "
                "when streaming). The turn is stored once the reply is complete. "
                + STREAM_NOTE
                + " "
                + IMAGE_TURN_NOTE,
            ),
            202,
            "Image turn started",
            ref("ChatImagePending"),
        )
    },
    "/v1/llm/chats/{chat_id}/image-jobs/{job_id}": {
        "get": op(
            "Poll an image turn of a chat",
            "Chat sessions",
            ok=ref("ChatImageJob"),
            params=(CHAT_ID, path_param("job_id", STR, "the image turn's job_id")),
            operation_id="chat_image_job_get",
            errors=(401, 404, 429),
            description=IMAGE_POLL_NOTE,
        )
    },
    "/v1/llm/terminal/commands": {
        "post": op(
            "Natural language to shell commands",
            "Terminal",
            body=ref("TerminalCommandsRequest"),
            ok=ref("TerminalCommands"),
            operation_id="terminal_commands",
            description="Ranked best first. danger is the higher of the model's label and a local analysis. "
            "Billed as a chat completion; an answer without usable commands is a 502 and costs nothing.",
        )
    },
}

# --- media (media_jobs views), described from the public API docs. media_jobs may take these over
# in media_jobs/openapi_paths.py: apps later in INSTALLED_APPS override path items defined here.
SCHEMAS.update(
    {
        "ImageRequest": {
            **obj(
                ("model", "prompt"),
                model=STR,
                prompt={**STR, "maxLength": 4000},
                n={**INT, "minimum": 1, "maximum": 4, "default": 1},
                size={
                    **STR,
                    "example": "1024x1024",
                    "description": "a size above what the model's price covers is 400 unsupported_parameter",
                },
                quality={
                    **STR,
                    "description": "a hint; a known tier the model's price does not cover is 400 "
                    "unsupported_parameter, an unknown value falls back to the model's default",
                },
                response_format={"type": "string", "enum": ["b64_json", "url"]},
                output_format={"type": "string", "enum": ["png", "jpeg", "jpg", "webp"]},
                input_images={"type": "array", "items": STR},
            ),
            "additionalProperties": True,
        },
        "ImageResult": {
            **obj(
                ("data", "cost_usd"),
                model=STR,
                created=INT,
                data={"type": "array", "items": obj((), b64_json=STR, url=STR, mime_type=STR)},
                output_format=STR,
                size={"type": "string", "nullable": True},
                images_requested=INT,
                images_delivered=INT,
                cost_usd=NUM,
                balance_usd=NUM,
            ),
            "additionalProperties": True,
        },
        "VideoRequest": {
            **obj(
                ("model", "prompt"),
                model=STR,
                prompt={**STR, "maxLength": 4000},
                duration=INT,
                aspect_ratio=STR,
                image_url=STR,
                video_url=STR,
                resolution=STR,
                audio=BOOL,
                mode=STR,
            ),
            "additionalProperties": True,
        },
        "MediaJob": {
            **obj(
                ("job_id", "status"),
                job_id=STR,
                model=STR,
                status={"type": "string", "enum": ["pending", "running", "completed", "failed"]},
                estimated_cost_usd=NUM,
                cost_usd=NUM,
                balance_usd=NUM,
                config={"type": "object"},
                image=obj((), b64_json=STR, url=STR, mime_type=STR),
                video=obj((), url=STR, mime_type=STR),
                error={"type": "object"},
            ),
            "additionalProperties": True,
        },
    }
)
MEDIA_JOB_ID = path_param("job_id", STR, "the media job's id")
POLL_NOTE = "Poll every 2-3 s; charged once, when a poll first returns the completed job."
PATHS.update(
    {
        "/v1/llm/images/generations": {
            "post": op(
                "Generate images (synchronous, up to 5 minutes)",
                "Media",
                body=ref("ImageRequest"),
                ok=ref("ImageResult"),
                operation_id="images_generate",
                description="Billed per delivered image.",
            )
        },
        "/v1/llm/images/jobs": {
            "post": op(
                "Start an image job",
                "Media",
                body=ref("ImageRequest"),
                ok=ref("MediaJob"),
                status=202,
                operation_id="image_job_create",
                description="Nano Banana slugs, n = 1. " + POLL_NOTE,
            )
        },
        "/v1/llm/images/jobs/{job_id}": {
            "get": op(
                "An image job",
                "Media",
                ok=ref("MediaJob"),
                params=(MEDIA_JOB_ID,),
                operation_id="image_job_get",
            )
        },
        "/v1/llm/videos/jobs": {
            "post": op(
                "Start a video job",
                "Media",
                body=ref("VideoRequest"),
                ok=ref("MediaJob"),
                status=202,
                operation_id="video_job_create",
                description=POLL_NOTE,
            )
        },
        "/v1/llm/videos/jobs/{job_id}": {
            "get": op(
                "A video job",
                "Media",
                ok=ref("MediaJob"),
                params=(MEDIA_JOB_ID,),
                operation_id="video_job_get",
            )
        },
        "/v1/llm/media/{token}": {
            "get": {
                "operationId": "media_file",
                "summary": "A generated file behind a signed, expiring link",
                "tags": ["Media"],
                "description": "No API key: the link is the credential.",
                "security": [],
                "parameters": [path_param("token", STR, "the signed token from a job's image / video url")],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "404": {
                        "description": "invalid or expired link",
                        "content": {"application/json": {"schema": ref("ErrorEnvelope")}},
                    },
                },
            }
        },
    }
)
