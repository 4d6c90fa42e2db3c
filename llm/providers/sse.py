"""Reading SSE events without decoding more than needed (the event loops are llm.providers.http.sse_data
and llm.providers.openai_relay)."""


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


def split_events(buffer: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """(the data of each whole SSE event in `buffer` + `chunk`, what is left of an unfinished one).
    Comment-only events are skipped; CRLF vendors are read as LF (a CR may end one network read and
    its LF start the next). The usual read, exactly one whole event, takes a fast path."""
    if not buffer and chunk.find(b"\n\n") == len(chunk) - 2 and b"\r" not in chunk:
        data = event_data(chunk[:-2])
        return ([] if data is None else [data]), b""
    if b"\r" in chunk or buffer.endswith(b"\r"):
        buffer = (buffer + chunk).replace(b"\r\n", b"\n")
    else:
        buffer += chunk
    events, end = [], buffer.find(b"\n\n")
    while end >= 0:
        data = event_data(buffer[:end])
        if data is not None:
            events.append(data)
        buffer = buffer[end + 2 :]
        end = buffer.find(b"\n\n")
    return events, buffer
