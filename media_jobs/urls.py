"""Image and video generation routes (mounted under /v1/openai/ and /v1/llm/)."""

openai_patterns: list = []
native_patterns: list = []
