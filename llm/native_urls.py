"""Native API routes for chat sessions, terminal commands and usage (mounted under /v1/llm/)."""

native_patterns: list = []
