"""The GPUniq client."""

import os
from typing import Optional

import httpx

from ._transport import Transport
from .errors import AuthenticationError
from .llm import LLM

DEFAULT_BASE_URL = "https://api.gpuniq.com"


class GPUniq:
    """client = GPUniq(api_key="gpuniq_...")  # or set GPUNIQ_API_KEY

    `base_url` is the API's origin (paths under /v1/llm/ are added). 429 and 502/503/504 are
    retried up to `max_retries` times, honouring Retry-After. Pass `http_client` to reuse or
    customise an httpx.Client (proxies, transports)."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: float = 330.0,
        max_retries: int = 2,
        http_client: Optional[httpx.Client] = None,
        **transport_options,
    ):
        api_key = api_key or os.environ.get("GPUNIQ_API_KEY")
        if not api_key:
            raise AuthenticationError(
                "no API key: pass api_key= or set GPUNIQ_API_KEY", code="missing_api_key"
            )
        base_url = (base_url or os.environ.get("GPUNIQ_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        for suffix in ("/v1/llm", "/v1"):
            if base_url.endswith(suffix):
                base_url = base_url[: -len(suffix)]
                break
        self.base_url = base_url
        self._transport = Transport(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            **transport_options,
        )
        self.llm = LLM(self._transport)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "GPUniq":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
