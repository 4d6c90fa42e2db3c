"""fal's queue API (https://fal.ai/docs/model-endpoints/queue): submit, poll status, fetch result.

Submit goes to the full model id; status, result and cancel use only "owner/app" plus the
request id (built here from the configured base URL, never from URLs in a reply). A status of
COMPLETED may still hide a failure: the error surfaces when the result is fetched, with the
model's own status code (422 content_policy_violation, 503 runner_disconnected, ...).
"""

import asyncio
import json
import logging

from django.conf import settings

from llm.providers.http import generic_error, scrub
from llm.upstreams import Upstream

from . import http
from .base import Deadline, UpstreamError

log = logging.getLogger("gpuniq.media.fal")
RUNNING = {"IN_QUEUE", "IN_PROGRESS"}


def parse_error(status: int, body: bytes, headers) -> UpstreamError:
    error = generic_error(status, body, headers)
    kind_header = headers.get("x-fal-error-type", "")
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    detail = data.get("detail") if isinstance(data, dict) else None
    types = {kind_header, str(data.get("error_type", "")) if isinstance(data, dict) else ""}
    message = error.message
    if isinstance(detail, list):
        types |= {str(d.get("type", "")) for d in detail if isinstance(d, dict)}
        message = "; ".join(str(d.get("msg", "")) for d in detail if isinstance(d, dict)) or message
    elif isinstance(detail, str):
        message = detail
    if "content_policy_violation" in types:
        return UpstreamError("content_policy", scrub(message), status=status)
    if status == 422:
        return UpstreamError("bad_request", scrub(message), status=status)
    return UpstreamError(error.kind, scrub(message), status=status, retry_after=error.retry_after)


class FalQueue:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.headers = {"Authorization": f"Key {upstream.api_key}"}

    def _request_url(self, model_id: str, request_id: str) -> str:
        app = "/".join(model_id.strip("/").split("/")[:2])
        return f"{self.upstream.base_url}/{app}/requests/{request_id}"

    async def run(self, model_id: str, payload: dict, deadline: Deadline) -> dict:
        """Submit, wait for COMPLETED within the deadline, return the result body."""
        submitted = http.json_of(
            await http.call(
                self.upstream,
                "POST",
                f"{self.upstream.base_url}/{model_id}",
                json=payload,
                headers=self.headers,
                deadline=deadline,
                error_parser=parse_error,
            )
        )
        request_id = submitted.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise UpstreamError("malformed", "the queue did not return a request id")
        url = self._request_url(model_id, request_id)
        try:
            await self._wait(url, deadline)
        except UpstreamError as error:
            if error.kind == "timeout":  # the budget ran out, in a poll or between two of them
                await self._cancel(url)
            raise
        return http.json_of(
            await http.call(
                self.upstream, "GET", url, headers=self.headers, deadline=deadline, error_parser=parse_error
            )
        )

    async def _wait(self, url: str, deadline: Deadline) -> None:
        interval = settings.GPUNIQ_MEDIA_POLL_SECONDS
        while True:
            status = http.json_of(
                await http.call(
                    self.upstream,
                    "GET",
                    f"{url}/status",
                    headers=self.headers,
                    deadline=deadline,
                    error_parser=parse_error,
                )
            )
            state = status.get("status")
            if state == "COMPLETED":
                return
            if state not in RUNNING:
                raise UpstreamError("malformed", f"unexpected queue status {state!r}")
            if deadline.remaining() <= interval:
                raise UpstreamError("timeout", "the provider did not finish within the budget")
            await asyncio.sleep(interval)

    async def _cancel(self, url: str) -> None:
        """Best effort: stop paying for work nobody will read."""
        try:
            await http.call(
                self.upstream,
                "PUT",
                f"{url}/cancel",
                headers=self.headers,
                deadline=Deadline.after(5),
                error_parser=parse_error,
            )
        except UpstreamError as error:
            log.info("fal cancel failed: %s", error)
