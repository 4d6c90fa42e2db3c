"""Write the nginx config of the fast fake upstream: a fixed OpenAI chat.completion (with usage)
at /json/v1/chat/completions and a fixed SSE stream (50 content chunks, a usage chunk, [DONE])
at /sse/v1/chat/completions, served as cached static files: the upstream costs next to nothing.
For the Anthropic family, a fixed Messages API reply (text block, usage) at /anthropic/v1/messages."""

import json
import sys
from pathlib import Path

CREATED = 1764000000


def completion_body() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the benchmark upstream."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        },
        separators=(",", ":"),
    )


def anthropic_body() -> str:
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "Hello from the benchmark upstream."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 7},
        },
        separators=(",", ":"),
    )


def chunk(delta: dict, finish=None, usage=None, choices=True) -> str:
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "bench-sse",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
    }
    if usage:
        obj["usage"] = usage
    return "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"


def sse_body(chunks: int = 50) -> str:
    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"word{i} "}) for i in range(chunks)]
    parts.append(chunk({}, finish="stop"))
    parts.append(
        chunk(
            {},
            usage={"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
            choices=False,
        )
    )
    parts.append("data: [DONE]\n\n")
    return "".join(parts)


def config(port: int, run_dir: Path) -> str:
    return f"""
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_buffer_size 64k;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {run_dir}/static;
    # POST to a static file is a 405 in nginx; re-serving it as 200 answers any method from memory/cache
    location = /json/v1/chat/completions {{ default_type application/json; error_page 405 =200 $uri; }}
    location = /sse/v1/chat/completions {{ default_type text/event-stream; error_page 405 =200 $uri; }}
    location = /anthropic/v1/messages {{ default_type application/json; error_page 405 =200 $uri; }}
    location = /json/v1/models {{
      default_type application/json; return 200 '{{"object":"list","data":[]}}';
    }}
  }}
}}
"""


if __name__ == "__main__":
    port, run_dir = int(sys.argv[1]), Path(sys.argv[2])
    for path, body in (
        ("json/v1/chat/completions", completion_body()),
        ("sse/v1/chat/completions", sse_body()),
        ("anthropic/v1/messages", anthropic_body()),
    ):
        target = run_dir / "static" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (run_dir / "nginx.conf").write_text(config(port, run_dir))
