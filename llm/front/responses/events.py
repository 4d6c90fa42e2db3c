"""The Responses API event stream, rendered from the canonical chat stream.

Follows https://platform.openai.com/docs/api-reference/responses-streaming: every event is
`event: <type>` + `data: {"type": <type>, "sequence_number": n, ...}`; a reply opens with
response.created and response.in_progress, each output item is bracketed by
response.output_item.added / .done (text inside response.content_part.added / .done with
response.output_text.delta / .done; calls with response.function_call_arguments.delta / .done;
reasoning with response.reasoning_summary_part.* and response.reasoning_summary_text.*), and
the stream ends with response.completed, response.incomplete or response.failed.
"""

import json
from json.encoder import encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it

from . import reply


def frame(event: dict) -> bytes:
    return (
        f"event: {event['type']}\ndata: ".encode()
        + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n\n"
    )


# response.output_text.delta, most of a reply's events, framed as frame() would without building
# and encoding a dict each time: the head, the sequence number, the item's part, the delta, the tail
_TEXT_DELTA_HEAD = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
)
_TEXT_DELTA_TAIL = b',"logprobs":[]}\n\n'


class _Item:
    def __init__(self, kind: str, index: int, item: dict):
        self.kind, self.index, self.item, self.open = kind, index, item, True
        self.parts: list[str] = []  # joined once, at the end: `text += delta` on an attribute
        # copies the whole text per delta (0.17 s of the event loop for 30,000 deltas)
        self.delta_fields = b""  # a message's text delta fields before the delta (text_delta)

    def text_delta(self, seq: int, delta: str) -> bytes:
        """frame() of this message's response.output_text.delta number `seq`."""
        if not self.delta_fields:
            item_id = json.dumps(self.item["id"], ensure_ascii=False)
            self.delta_fields = (
                f',"item_id":{item_id},"output_index":{self.index},"content_index":0,"delta":'.encode()
            )
        return b"".join(
            (
                _TEXT_DELTA_HEAD,
                b"%d" % seq,
                self.delta_fields,
                encode_basestring(delta).encode(),
                _TEXT_DELTA_TAIL,
            )
        )

    def add(self, delta: str) -> None:
        self.parts.append(delta)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ResponseEvents:
    """Turns chat chunks into Responses events for one response. Feed it chunks with `chunk()`,
    the final usage with `usage()`, and end it with `completed()` or `failed()`; each returns the
    bytes to send. `response` is the response object as it stands (complete after the end)."""

    def __init__(self, response: dict):
        self.response = response
        self.seq = 0
        self.items: list[_Item] = []
        self.calls: dict[int, _Item] = {}
        self.finish_reason: str | None = None
        self.usage_obj: dict | None = None

    def _emit(self, out: list, type_: str, **fields) -> None:
        out.append(frame({"type": type_, "sequence_number": self.seq, **fields}))
        self.seq += 1

    def start(self) -> bytes:
        out: list[bytes] = []
        self._emit(out, "response.created", response=self.response)
        self._emit(out, "response.in_progress", response=self.response)
        return b"".join(out)

    # --- items ---------------------------------------------------------------------------
    def _open(self, out: list, kind: str, item: dict) -> _Item:
        for other in self.items:
            if other.open and other.kind != "function_call":
                self._close(out, other)
        entry = _Item(kind, len(self.items), item)
        self.items.append(entry)
        shown = {**item, "status": "in_progress"} if kind != "reasoning" else {**item, "summary": []}
        if kind == "message":
            shown["content"] = []
        self._emit(out, "response.output_item.added", output_index=entry.index, item=shown)
        if kind == "message":
            self._emit(
                out,
                "response.content_part.added",
                item_id=item["id"],
                output_index=entry.index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
        elif kind == "reasoning":
            self._emit(
                out,
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=entry.index,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        return entry

    def _current(self, out: list, kind: str) -> _Item:
        last = self.items[-1] if self.items else None
        if last is not None and last.open and last.kind == kind:
            return last
        item = reply.message_item("", status="in_progress") if kind == "message" else reply.reasoning_item("")
        return self._open(out, kind, item)

    def _close(self, out: list, entry: _Item) -> None:
        entry.open = False
        item_id, index = entry.item["id"], entry.index
        if entry.kind == "message":
            status = "incomplete" if self.finish_reason == "length" else "completed"
            entry.item = reply.message_item(entry.text, item_id=item_id, status=status)
            part = entry.item["content"][0]
            self._emit(
                out,
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=entry.text,
                logprobs=[],
            )
            self._emit(
                out,
                "response.content_part.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=part,
            )
        elif entry.kind == "reasoning":
            entry.item = reply.reasoning_item(entry.text, item_id=item_id)
            self._emit(
                out,
                "response.reasoning_summary_text.done",
                item_id=item_id,
                output_index=index,
                summary_index=0,
                text=entry.text,
            )
            self._emit(
                out,
                "response.reasoning_summary_part.done",
                item_id=item_id,
                output_index=index,
                summary_index=0,
                part={"type": "summary_text", "text": entry.text},
            )
        else:
            entry.item = {**entry.item, "arguments": entry.text, "status": "completed"}
            self._emit(
                out,
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                arguments=entry.text,
            )
        self._emit(out, "response.output_item.done", output_index=index, item=entry.item)

    # --- the chat stream -------------------------------------------------------------------
    def chunk(self, chunk: dict) -> bytes:
        out: list[bytes] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            self._delta(out, delta)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if isinstance(chunk.get("usage"), dict):
            self.usage_obj = chunk["usage"]
        return b"".join(out)

    def _delta(self, out: list, delta: dict) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            entry = self._current(out, "reasoning")
            entry.add(reasoning)
            self._emit(
                out,
                "response.reasoning_summary_text.delta",
                item_id=entry.item["id"],
                output_index=entry.index,
                summary_index=0,
                delta=reasoning,
            )
        content = delta.get("content")
        if isinstance(content, str) and content:
            entry = self._current(out, "message")
            entry.add(content)
            out.append(entry.text_delta(self.seq, content))  # what _emit would, made faster
            self.seq += 1
        for call in delta.get("tool_calls") or ():
            self._call(out, call)

    def _call(self, out: list, call: dict) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        entry = self.calls.get(index)
        if entry is None:
            item = reply.call_item(
                {"id": call.get("id"), "function": {"name": function.get("name"), "arguments": ""}},
                status="in_progress",
            )
            entry = self.calls[index] = self._open(out, "function_call", item)
        elif function.get("name") and not entry.item["name"]:
            entry.item["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            entry.add(arguments)
            self._emit(
                out,
                "response.function_call_arguments.delta",
                item_id=entry.item["id"],
                output_index=entry.index,
                delta=arguments,
            )

    # --- the end -----------------------------------------------------------------------------
    def _close_all(self, out: list) -> None:
        for entry in self.items:
            if entry.open:
                self._close(out, entry)

    def completed(self, usage, cost) -> bytes:
        out: list[bytes] = []
        self._close_all(out)
        reply.finish(
            self.response,
            output=[e.item for e in self.items],
            usage=usage,
            cost=cost,
            finish_reason=self.finish_reason,
        )
        kind = "response.incomplete" if self.response["status"] == "incomplete" else "response.completed"
        self._emit(out, kind, response=self.response)
        return b"".join(out)

    def failed(self, error: dict) -> bytes:
        out: list[bytes] = []
        self.response.update(
            status="failed",
            output=[e.item for e in self.items if not e.open],
            error={"code": "server_error", "message": str(error.get("message") or "error")},
        )
        self._emit(out, "response.failed", response=self.response)
        return b"".join(out)
