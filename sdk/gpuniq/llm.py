"""`client.llm`: chat, chat sessions (text and image turns), terminal commands, models, balance, usage,
image and video jobs.

Every method returns the `data` of the API's answer (a dict) unless documented otherwise, and
raises a GPUniqError subclass on failure.
"""

import time
from typing import Any, Callable, Dict, List, Optional

from ._transport import Transport
from .errors import JobFailedError, JobTimeoutError

POLL_INTERVAL = 2.5  # seconds between polls, as the API docs advise (2-3 s)
WAIT_BUDGET = 300.0  # seconds: covers the slowest image (Pro / 4K) and video runs
TERMINAL = ("completed", "failed")


def _drop_none(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class LLM:
    def __init__(
        self,
        transport: Transport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._t = transport
        self._sleep, self._clock = sleep, clock

    # --- chat -----------------------------------------------------------------------------
    def chat(self, model: str, message: str, **options: Any) -> str:
        """One user message → the reply text."""
        data = self.chat_completion([{"role": "user", "content": message}], model=model, **options)
        return data["content"]

    def chat_completion(
        self,
        messages: List[Dict[str, Any]],
        model: Optional[str] = None,
        temperature: Optional[float] = None,
        max_tokens: Optional[int] = None,
        top_p: Optional[float] = None,
        **extra: Any,
    ) -> Dict[str, Any]:
        """The full reply: content, finish_reason, tokens_used, prompt/completion tokens, cost_usd,
        balance_usd."""
        body = _drop_none(
            messages=messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            **extra,
        )
        return self._t.request("POST", "/v1/llm/chat/completions", json=body)

    def models(self) -> Dict[str, Any]:
        return self._t.request("GET", "/v1/llm/models")

    def balance(self) -> Dict[str, Any]:
        """balance_usd (spendable now), held_usd (reserved by requests in flight), total_usd."""
        return self._t.request("GET", "/v1/llm/balance")

    # --- usage ----------------------------------------------------------------------------
    def usage_history(self, limit: int = 50, offset: int = 0) -> Dict[str, Any]:
        return self._t.request("GET", "/v1/llm/usage/history", params={"limit": limit, "offset": offset})

    def usage_breakdown(
        self,
        period: str = "day",
        start: Optional[str] = None,
        end: Optional[str] = None,
        group_by: Optional[str] = None,
        tz: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Aggregates per day or week; start / end are local dates (YYYY-MM-DD), tz an IANA name."""
        params = {"period": period, "start": start, "end": end, "group_by": group_by, "tz": tz}
        return self._t.request("GET", "/v1/llm/usage/breakdown", params=params)

    # --- chat sessions --------------------------------------------------------------------
    def create_chat_session(
        self, model: Optional[str] = None, title: Optional[str] = None, system_prompt: Optional[str] = None
    ) -> Dict[str, Any]:
        body = _drop_none(model=model, title=title, system_prompt=system_prompt)
        return self._t.request("POST", "/v1/llm/chats", json=body)

    def send_message(
        self,
        chat_id: int,
        message: str,
        model: Optional[str] = None,
        temperature: Optional[float] = None,
        max_tokens: Optional[int] = None,
        **extra: Any,
    ) -> Dict[str, Any]:
        body = _drop_none(
            message=message, model=model, temperature=temperature, max_tokens=max_tokens, **extra
        )
        return self._t.request("POST", f"/v1/llm/chats/{int(chat_id)}/messages", json=body)

    def get_chat_image_job(self, chat_id: int, job_id: str) -> Dict[str, Any]:
        """An image turn's job; 404 (NotFoundError) once a poll has seen it end: read the chat then."""
        return self._t.request("GET", f"/v1/llm/chats/{int(chat_id)}/image-jobs/{job_id}")

    def generate_chat_image(
        self,
        chat_id: int,
        model: str,
        prompt: str,
        *,
        wait: bool = True,
        poll_interval: float = POLL_INTERVAL,
        timeout: float = WAIT_BUDGET,
        **options: Any,
    ) -> Dict[str, Any]:
        """An image turn in a chat (Nano Banana models): the prompt and the image land in the chat's
        history. With wait=True poll until it completes ("image", "cost_usd", "balance_usd",
        "dialogue_id"); options: size, quality, output_format, input_images."""
        job = self.send_message(chat_id, prompt, model=model, **options)
        if not wait:
            return job
        return self.wait_for_job(
            job, lambda job_id: self.get_chat_image_job(chat_id, job_id), poll_interval, timeout
        )

    def list_chat_sessions(self, limit: int = 20, offset: int = 0) -> Dict[str, Any]:
        """{"chats": [...], "total", "limit", "offset"}, newest first."""
        return self._t.request("GET", "/v1/llm/chats", params={"limit": limit, "offset": offset})

    def get_chat_session(self, chat_id: int) -> Dict[str, Any]:
        """The chat with its full message history under "messages"."""
        return self._t.request("GET", f"/v1/llm/chats/{int(chat_id)}")

    def update_chat_session(
        self,
        chat_id: int,
        title: Optional[str] = None,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
    ) -> Dict[str, Any]:
        body = _drop_none(title=title, model=model, system_prompt=system_prompt)
        return self._t.request("PATCH", f"/v1/llm/chats/{int(chat_id)}", json=body)

    def delete_chat_session(self, chat_id: int) -> Dict[str, Any]:
        return self._t.request("DELETE", f"/v1/llm/chats/{int(chat_id)}")

    # --- terminal -------------------------------------------------------------------------
    def generate_commands(
        self,
        prompt: str,
        max_commands: int = 5,
        shell: Optional[str] = None,
        os: Optional[str] = None,
        model: Optional[str] = None,
    ) -> Dict[str, Any]:
        """{"commands": [{"command", "description", "danger": "safe"|"caution"|"dangerous"}], ...}"""
        body = _drop_none(prompt=prompt, max_commands=max_commands, shell=shell, os=os, model=model)
        return self._t.request("POST", "/v1/llm/terminal/commands", json=body)

    # --- images and videos ----------------------------------------------------------------
    def create_image_job(self, model: str, prompt: str, n: int = 1, **options: Any) -> Dict[str, Any]:
        return self._t.request(
            "POST", "/v1/llm/images/jobs", json={"model": model, "prompt": prompt, "n": n, **options}
        )

    def get_image_job(self, job_id: str) -> Dict[str, Any]:
        return self._t.request("GET", f"/v1/llm/images/jobs/{job_id}")

    def generate_image(
        self,
        model: str,
        prompt: str,
        *,
        wait: bool = True,
        poll_interval: float = POLL_INTERVAL,
        timeout: float = WAIT_BUDGET,
        **options: Any,
    ) -> Dict[str, Any]:
        """Kick off an image job; with wait=True poll until it completes (the completed job, with
        "image", "cost_usd", "balance_usd"). Raises JobFailedError / JobTimeoutError."""
        job = self.create_image_job(model, prompt, **options)
        return self.wait_for_job(job, self.get_image_job, poll_interval, timeout) if wait else job

    def create_video_job(self, model: str, prompt: str, **options: Any) -> Dict[str, Any]:
        """options: duration, aspect_ratio, image_url, video_url, resolution, audio, mode."""
        return self._t.request(
            "POST", "/v1/llm/videos/jobs", json={"model": model, "prompt": prompt, **options}
        )

    def get_video_job(self, job_id: str) -> Dict[str, Any]:
        return self._t.request("GET", f"/v1/llm/videos/jobs/{job_id}")

    def generate_video(
        self,
        model: str,
        prompt: str,
        *,
        wait: bool = True,
        poll_interval: float = 3.0,
        timeout: float = WAIT_BUDGET,
        **options: Any,
    ) -> Dict[str, Any]:
        """Kick off a video job; with wait=True poll until it completes (the job, with "video": {"url"})."""
        job = self.create_video_job(model, prompt, **options)
        return self.wait_for_job(job, self.get_video_job, poll_interval, timeout) if wait else job

    def wait_for_job(
        self,
        job: Dict[str, Any],
        get: Callable[[str], Dict[str, Any]],
        poll_interval: float = POLL_INTERVAL,
        timeout: float = WAIT_BUDGET,
    ) -> Dict[str, Any]:
        """Poll `get(job_id)` every `poll_interval` seconds until the job is terminal or `timeout` passes."""
        deadline = self._clock() + timeout
        while job.get("status") not in TERMINAL:
            if self._clock() + poll_interval > deadline:
                raise JobTimeoutError(f"job {job.get('job_id')} did not finish within {timeout:g}s", job=job)
            self._sleep(poll_interval)
            job = get(job["job_id"])
        if job["status"] == "failed":
            error = job.get("error") if isinstance(job.get("error"), dict) else {}
            raise JobFailedError(
                error.get("message") or f"job {job.get('job_id')} failed", job=job, code=error.get("code")
            )
        return job
