"""Reading SSE events without decoding more than needed (the event loop is llm.providers.http.sse_data)."""


def parse_event(event: bytes) -> tuple[str | None, bytes | None]:
    """(event name, data) of one raw SSE event; comment-only events give (None, None)."""
    name = None
    data_lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return name, (b"\n".join(data_lines) if data_lines else None)


def event_data(event: bytes) -> bytes | None:
    """parse_event()'s data alone, with a fast path for the usual one-line `data: ...` event."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    return parse_event(event)[1]
