"""Splitting an upstream byte stream into SSE events without decoding more than needed."""

from collections.abc import AsyncIterator


async def iter_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield each raw SSE event (without the blank line that ends it). Handles \\n and \\r\\n."""
    buffer = b""
    async for chunk in chunks:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        buffer += chunk
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            event, buffer = buffer[:end], buffer[end + 2:]
            if event:
                yield event
    if buffer.strip():
        yield buffer.strip(b"\n")


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
