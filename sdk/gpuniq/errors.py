"""Typed errors. Every API failure carries the stable error `code`, the HTTP `status_code`
and the `request_id` to quote when reporting it."""

from typing import Any, Optional


class GPUniqError(Exception):
    """Base class of every error this SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code={self.code}")
        if self.status_code:
            parts.append(f"status={self.status_code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " | ".join(parts)


class AuthenticationError(GPUniqError):
    """401: missing, invalid or revoked API key."""


class InvalidRequestError(GPUniqError):
    """400 / 403 / 409 / 413: the request cannot be served as sent."""


class PermissionDeniedError(InvalidRequestError):
    """403: the key may not do this (model allow-list, monthly spend cap)."""


class InsufficientBalanceError(GPUniqError):
    """402: top up the balance or ask for less (max_tokens, n)."""


class NotFoundError(GPUniqError):
    """404: no such chat, job, model or endpoint (or it belongs to someone else)."""


class RateLimitError(GPUniqError):
    """429: the key's rate limit; `retry_after` says how long to wait (seconds)."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class APIError(GPUniqError):
    """5xx and anything unexpected: upstream failures, timeouts, internal errors."""


class APIConnectionError(APIError):
    """The API could not be reached (network error or timeout)."""


class JobFailedError(APIError):
    """A media job ended in status "failed"; `job` is its last state (nothing was charged)."""

    def __init__(self, message: str, *, job: Optional[dict] = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.job = job


class JobTimeoutError(GPUniqError):
    """A media job did not finish within the wait budget; `job` is its last state. Poll it again
    later with get_image_job / get_video_job: it may still complete."""

    def __init__(self, message: str, *, job: Optional[dict] = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.job = job


_BY_STATUS = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: InvalidRequestError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_for(
    status_code: int, body: Any, request_id: Optional[str], retry_after: Optional[float]
) -> GPUniqError:
    """The typed error for an HTTP error answer (native or OpenAI envelope, or anything else)."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = error.get("message") or f"HTTP {status_code}"
    request_id = (body.get("request_id") if isinstance(body, dict) else None) or request_id
    cls = (
        InsufficientBalanceError if code == "insufficient_balance" else _BY_STATUS.get(status_code, APIError)
    )
    kwargs: dict = {"code": code, "status_code": status_code, "request_id": request_id, "body": body}
    if cls is RateLimitError:
        kwargs["retry_after"] = retry_after
    return cls(message, **kwargs)
