"""Python client for the native GPUniq API (https://api.gpuniq.com/v1/llm/*).

from gpuniq import GPUniq
client = GPUniq(api_key="gpuniq_your_key")
print(client.llm.chat("claude-haiku-4-5", "Explain how transformers work"))
"""

from .client import DEFAULT_BASE_URL, GPUniq
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    GPUniqError,
    InsufficientBalanceError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__version__ = "0.1.0"
__all__ = [
    "GPUniq",
    "DEFAULT_BASE_URL",
    "GPUniqError",
    "AuthenticationError",
    "InvalidRequestError",
    "PermissionDeniedError",
    "InsufficientBalanceError",
    "NotFoundError",
    "RateLimitError",
    "APIError",
    "APIConnectionError",
    "JobFailedError",
    "JobTimeoutError",
    "__version__",
]
