"""HTTP with the native envelope unwrapped, typed errors, and retries with backoff.

Retried: 429 and 502 / 503 / 504 (for every method: the API charges nothing for these), and
connection failures before the request was sent. The wait is the server's Retry-After when it
gives one (up to `max_retry_after` seconds), else exponential backoff with jitter.
"""

import email.utils
import random
import time
from typing import Any, Callable, Optional

import httpx

from .errors import APIConnectionError, APIError, GPUniqError, error_for

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "gpuniq-python/0.1.0"


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when else None


class Transport:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        http_client: Optional[httpx.Client] = None,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.sleep = sleep
        self.headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        self.client = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Optional[dict] = None) -> Any:
        """The `data` of a native success envelope (or the whole JSON body if it is not one)."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self.client.request(
                    method, self.base_url + path, json=json, params=params, headers=self.headers
                )
            except httpx.TransportError as exc:
                retry = isinstance(exc, httpx.ConnectError) or method == "GET"
                if retry and attempt < self.max_retries:
                    self.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise APIConnectionError(f"could not reach {self.base_url}: {exc!r}") from exc
            if response.status_code < 400:
                return self._data(response)
            error = self._error(response)
            wait = self._retry_wait(response, error, attempt)
            if wait is None:
                raise error
            self.sleep(wait)
            attempt += 1

    def _retry_wait(self, response: httpx.Response, error: GPUniqError, attempt: int) -> Optional[float]:
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            return self._backoff(attempt)
        return retry_after if retry_after <= self.max_retry_after else None

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.backoff * (2**attempt))
        return delay * (0.75 + random.random() / 4)

    @staticmethod
    def _data(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            body = response.json()
        except ValueError:
            raise APIError(
                "the API answered with a body that is not JSON",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from None
        if isinstance(body, dict) and body.get("success") is True and "data" in body:
            return body["data"]
        return body

    @staticmethod
    def _error(response: httpx.Response) -> GPUniqError:
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"message": response.text[:500] or f"HTTP {response.status_code}"}}
        return error_for(
            response.status_code,
            body,
            response.headers.get("x-request-id"),
            parse_retry_after(response.headers.get("retry-after")),
        )
