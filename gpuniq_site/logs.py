"""Logging: one JSON object per line (GPUNIQ_LOG_FORMAT=json, the default with PostgreSQL) or
plain text. Every record logged while a request is handled carries that request's id, the same
one its response sends in x-request-id, so a client's report leads straight to the log lines."""

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str] = ContextVar("gpuniq_request_id", default="")


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Lines logged inside carry `request_id`: a worker running a job logs under the id of the
    request that started it, as the app process did."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds record.request_id (empty outside a request) for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or request_id_var.get()
        if request_id:
            data["request_id"] = request_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def config(fmt: str, level: str) -> dict[str, Any]:
    """The LOGGING dict for settings.py; uvicorn's loggers are included so its lines match."""
    handler = {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["request_id"]}
    loggers: dict[str, dict[str, Any]] = {
        "django.request": {"level": "ERROR"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    }
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        loggers[name] = {"handlers": ["console"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "gpuniq_site.logs.RequestIdFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "gpuniq_site.logs.JsonFormatter"},
        },
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }
