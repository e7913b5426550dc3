"""The apiframe HTTP client: one shared `httpx.AsyncClient`, the key only in `X-API-Key`, retries that never
outlive the tool call's deadline, and every error answer turned into a `StemsError` a person can act on.

It owns the wire format both ways: it builds each request body and reads each answer into a model. Answers
are size-capped, and every text apiframe sends back is scrubbed of the key before anything else sees it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from pydantic import SecretStr, ValidationError

from ..deadline import Deadline
from ..errors import (
    ApiError,
    ApiUnavailable,
    Conflict,
    KeyRejected,
    NotEnoughCredits,
    NotFound,
    RateLimited,
    Rejected,
)
from ..redaction import Redactor
from .models import ApiJob, ApiJobPage, Submission, Webhook
from .retry import RetryPolicy, is_retryable_status, parse_retry_after

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""The largest answer read: a page of 50 jobs is about 100 kB."""
CONNECT_ATTEMPTS = 3
"""A refused connection or an unknown host is tried this often, quickly: waiting longer does not fix a wrong URL."""

log = logging.getLogger(__name__)


class _Unusable(Exception):
    """An answer worth retrying: a network failure, a timeout, a 5xx, or a body that cannot be read."""

    def __init__(self, reason: str, retry_after: float | None = None, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable
        """No connection could be made: nothing was sent."""


class ApiframeClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._key = api_key
        self._policy = policy or RetryPolicy()
        self._redactor = Redactor([api_key.get_secret_value()])

    @property
    def base_url(self) -> str:
        return self._base_url

    # the calls ------------------------------------------------------------------------------------------

    async def get_job(self, job_id: str, deadline: Deadline) -> ApiJob:
        body, response = await self._call("GET", f"/v2/jobs/{job_id}", deadline=deadline, job_id=job_id)
        job: ApiJob = self._parse(ApiJob, body, job_id)
        return job.model_copy(update={"server_time": _server_time(response)})

    async def list_jobs(
        self, *, deadline: Deadline, model: str | None = None, status: str | None = None, limit: int = 20,
        cursor: str | None = None,
    ) -> ApiJobPage:
        params: dict[str, str | int] = {"limit": limit}
        params.update({k: v for k, v in (("model", model), ("status", status), ("cursor", cursor)) if v})
        body, _ = await self._call("GET", "/v2/jobs", params=params, deadline=deadline)
        return self._parse(ApiJobPage, body)

    async def submit_stems(self, parent_job_id: str, track_id: str, webhook: Webhook | None, *,
                           idempotency_key: str, deadline: Deadline) -> Submission:
        """POST the split. Retried like a GET: the idempotency key makes a repeat return the same job."""
        body: dict[str, Any] = {"parentJobId": parent_job_id, "action": "stems", "trackId": track_id}
        if webhook is not None:
            body["webhookUrl"] = webhook.url
            body["webhookEvents"] = list(webhook.events)
        answer, response = await self._call(
            "POST", "/v2/music/suno/action", json_body=body, deadline=deadline,
            headers={"Idempotency-Key": idempotency_key},
        )
        submission = self._parse(Submission, answer)
        return submission.model_copy(update={"server_time": _server_time(response)})

    # the machinery --------------------------------------------------------------------------------------

    def _parse(self, model: Any, body: Any, job_id: str | None = None) -> Any:
        try:
            return model.model_validate(body)
        except (ValidationError, RecursionError) as exc:
            problems = f"{exc.error_count()} problem(s)" if isinstance(exc, ValidationError) else "nested too deeply"
            about = f" about job {job_id}" if job_id else ""
            raise ApiUnavailable(
                f"apiframe answered{about} with data this server cannot read ({problems}); try again in a moment.",
                job_id=job_id) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        job_id: str | None = None,
    ) -> tuple[Any, httpx.Response]:
        attempt = 0
        reason = "no attempt was made"
        unreachable = 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0.05:
                raise self._gave_up(reason, attempt, job_id)
            attempt += 1
            try:
                return await self._once(method, path, remaining, params=params, json_body=json_body,
                                        headers=headers, job_id=job_id)
            except _Unusable as problem:
                reason = problem.reason
                wait = problem.retry_after
                unreachable = unreachable + 1 if problem.unreachable else 0
                if unreachable >= CONNECT_ATTEMPTS:
                    raise self._unreachable(reason, method) from None
                if problem.unreachable:
                    await anyio.sleep(min(0.2 * unreachable, deadline.remaining()))
                    continue
                if wait is not None and wait > deadline.remaining():
                    raise RateLimited(
                        f"apiframe is rate limiting this key and asks to wait {math.ceil(wait)} s, longer than this "
                        f"call may wait. Try again in {math.ceil(wait)} s."
                        + (f" The job is {job_id}: nothing is lost." if job_id else ""),
                        retry_after=wait,
                    ) from None
            if attempt >= self._policy.max_attempts:
                raise self._gave_up(reason, attempt, job_id)
            delay = wait if wait is not None else self._policy.backoff(attempt)
            if delay >= deadline.remaining():
                raise self._gave_up(reason, attempt, job_id)
            log.info("apiframe %s %s: %s; retrying in %.2f s", method, path, reason, delay)
            await anyio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        remaining: float,
        *,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        job_id: str | None,
    ) -> tuple[Any, httpx.Response]:
        budget = min(self._policy.request_timeout, remaining)
        timeout = httpx.Timeout(budget, connect=min(self._policy.connect_timeout, budget))
        request_headers = {"X-API-Key": self._key.get_secret_value(), "Accept": "application/json"}
        request_headers.update(headers or {})
        try:
            with anyio.fail_after(budget):  # also bounds what socket timeouts cannot: a slow drip of bytes
                request = self._http.build_request(method, self._base_url + path, params=params, json=json_body,
                                                   headers=request_headers, timeout=timeout)
                response = await self._http.send(request, stream=True, follow_redirects=False)
                try:
                    content = await _read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise _Unusable(f"no answer within {budget:.0f} s") from None
        except httpx.TimeoutException:
            raise _Unusable(f"no answer within {budget:.0f} s") from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise _Unusable(_network_reason(exc), unreachable=True) from None
        except httpx.HTTPError as exc:
            raise _Unusable(_network_reason(exc)) from None
        except _TooLarge:
            raise ApiUnavailable(
                f"apiframe sent an answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MB"
                + (f" about job {job_id}" if job_id else "") + ", which this server does not read. Try again later."
                + (f" The job is {job_id}: nothing is lost." if job_id else ""), job_id=job_id) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(self._redactor.scrub(content.decode("utf-8", errors="replace"))), response
            except (ValueError, RecursionError):
                raise _Unusable(f"an unreadable answer (HTTP {status}, not JSON)") from None
        if is_retryable_status(status):
            retry_after = parse_retry_after(response.headers.get("retry-after")) if status == 429 else None
            raise _Unusable(self._redact(f"HTTP {status}{_detail(content)}"), retry_after)
        raise self._error(response, content, job_id)

    def _gave_up(self, reason: str, attempts: int, job_id: str | None) -> ApiUnavailable:
        about = f" while reading job {job_id}" if job_id else ""
        return ApiUnavailable(
            f"apiframe could not be reached usably{about} ({reason}, after {attempts} attempt(s)). Try again in a "
            "minute; repeating the same request is safe.",
            job_id=job_id,
        )

    def _unreachable(self, reason: str, method: str) -> ApiUnavailable:
        sent = " Nothing was submitted." if method == "POST" else ""
        return ApiUnavailable(
            f"Cannot connect to apiframe at {self._base_url} ({reason}).{sent} Check APIFRAME_BASE_URL (leave it "
            "unset for https://api.apiframe.ai) and this machine's network, then try again.")

    def _error(self, response: httpx.Response, content: bytes, job_id: str | None) -> ApiError:
        status = response.status_code
        body = _json_or_none(content)
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("location", "")).hostname or "another address"
            return Rejected(
                f"apiframe answered with a redirect (HTTP {status} to {self._redact(target)}), which this server "
                f"does not follow for API calls. Check APIFRAME_BASE_URL (now {self._base_url}).",
                status=status, job_id=job_id)
        text = self._redact(_message(body) or response.reason_phrase or "no reason given")
        if status == 401:
            hint = "" if self._key.get_secret_value().startswith("afk_") else " (apiframe keys start with afk_)"
            return KeyRejected(
                f"apiframe rejected the API key (401: {text}). Check APIFRAME_API_KEY{hint}: copy the key again from "
                "the apiframe dashboard, set it in this server's environment and restart the server.", status=401)
        if status == 403:
            return KeyRejected(
                f"apiframe refused the API key (403: {text}): it is inactive or lacks permission. Reactivate it or "
                "create a new key in the apiframe dashboard, then update APIFRAME_API_KEY.", status=403)
        if status == 402:
            required, available = _int(body, "creditsRequired"), _int(body, "creditsAvailable")
            numbers = (f"it needs {required} credits and the account has {available}"
                       if required is not None and available is not None else text)
            return NotEnoughCredits(
                f"Not enough apiframe credits: {numbers}. Top up the account in the apiframe dashboard, then try "
                "again. Nothing was charged.", required=required, available=available)
        if status == 404:
            return NotFound(f"apiframe has no such job in this account (404: {text}).", status=404, job_id=job_id)
        if status == 409:
            return Conflict(f"apiframe refused the request (409): {text}", status=409, job_id=job_id)
        details = body.get("details") if isinstance(body, dict) else None
        listed = "; ".join(
            f"{path or 'body'}: {', '.join(map(str, problems)) if isinstance(problems, list) else problems}"
            for path, problems in details.items()
        ) if isinstance(details, dict) and details else ""
        return Rejected(
            f"apiframe rejected the request ({status}: {text}{' — ' + self._redact(listed) if listed else ''}). "
            "Check the values it names and try again; if apiframe keeps refusing a request that looks right, "
            "send its message to apiframe support.",
            status=status, job_id=job_id)

    def _redact(self, text: str) -> str:
        return self._redactor.scrub(text)


class _TooLarge(Exception):
    pass


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _message(body: Any) -> str | None:
    """The reason in an error body, whichever shape it has: `{"error"}`, `{"message"}`, or not JSON."""
    if isinstance(body, dict):
        for field in ("error", "message"):
            if isinstance(body.get(field), str) and body[field].strip():
                return str(body[field]).strip()[:500]
    return None


def _detail(content: bytes) -> str:
    message = _message(_json_or_none(content))
    return f" {message}" if message else ""


def _int(body: Any, field: str) -> int | None:
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _network_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host not found"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "not an http(s) address"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke off"
    return f"a network error ({type(exc).__name__})"


def _server_time(response: httpx.Response) -> float | None:
    date = response.headers.get("date")
    if not date:
        return None
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
