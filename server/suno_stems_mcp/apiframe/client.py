"""The apiframe HTTP client: one shared `httpx.AsyncClient`, the key only in `X-API-Key`, retries that never
outlive the tool call's deadline, and every error answer turned into a `StemsError` a person can act on."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

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
from .models import ApiJob, ApiJobPage, Submission
from .retry import RetryPolicy, is_retryable_status, parse_retry_after

log = logging.getLogger(__name__)


class _Unusable(Exception):
    """An answer worth retrying: a network failure, a timeout, a 5xx, or a body that cannot be read."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


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

    # the calls ------------------------------------------------------------------------------------------

    async def get_job(self, job_id: str, deadline: Deadline) -> ApiJob:
        body, _ = await self._call("GET", f"/v2/jobs/{job_id}", deadline=deadline, job_id=job_id)
        return self._parse(ApiJob, body)

    async def list_jobs(
        self, *, deadline: Deadline, model: str | None = None, status: str | None = None, limit: int = 20,
        cursor: str | None = None,
    ) -> ApiJobPage:
        params: dict[str, str | int] = {"limit": limit}
        params.update({k: v for k, v in (("model", model), ("status", status), ("cursor", cursor)) if v})
        body, _ = await self._call("GET", "/v2/jobs", params=params, deadline=deadline)
        return self._parse(ApiJobPage, body)

    async def submit_stems(self, body: Mapping[str, Any], *, idempotency_key: str, deadline: Deadline) -> Submission:
        """POST the split. Retried like a GET: the idempotency key makes a repeat return the same job."""
        answer, response = await self._call(
            "POST", "/v2/music/suno/action", json_body=dict(body), deadline=deadline,
            headers={"Idempotency-Key": idempotency_key},
        )
        submission = self._parse(Submission, answer)
        return submission.model_copy(update={"server_time": _server_time(response)})

    # the machinery --------------------------------------------------------------------------------------

    def _parse(self, model: Any, body: Any) -> Any:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ApiUnavailable(
                f"apiframe answered with data this server cannot read ({exc.error_count()} problem(s)); "
                "try again in a moment."
            ) from None

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
                response = await self._http.request(
                    method, self._base_url + path, params=params, json=json_body, headers=request_headers,
                    timeout=timeout, follow_redirects=False,
                )
        except TimeoutError:
            raise _Unusable(f"no answer within {budget:.0f} s") from None
        except httpx.TimeoutException:
            raise _Unusable(f"no answer within {budget:.0f} s") from None
        except httpx.HTTPError as exc:
            raise _Unusable(_network_reason(exc)) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(response.content), response
            except ValueError:
                raise _Unusable(f"an unreadable answer (HTTP {status}, not JSON)") from None
        if is_retryable_status(status):
            retry_after = parse_retry_after(response.headers.get("retry-after")) if status == 429 else None
            raise _Unusable(self._redact(f"HTTP {status}{_detail(response)}"), retry_after)
        raise self._error(response, job_id)

    def _gave_up(self, reason: str, attempts: int, job_id: str | None) -> ApiUnavailable:
        where = f"Job {job_id} is safe: call get_job with job_id={job_id} in a minute." if job_id else (
            "Try again in a minute; repeating the same request is safe.")
        return ApiUnavailable(
            f"apiframe could not be reached usably ({reason}, after {attempts} attempt(s)). {where}",
            job_id=job_id,
        )

    def _error(self, response: httpx.Response, job_id: str | None) -> ApiError:
        status = response.status_code
        body = _json_or_none(response)
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
            f"apiframe rejected the request ({status}: {text}{' — ' + self._redact(listed) if listed else ''}).",
            status=status, job_id=job_id)

    def _redact(self, text: str) -> str:
        return text.replace(self._key.get_secret_value(), "[redacted]")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _message(body: Any) -> str | None:
    """The reason in an error body, whichever shape it has: `{"error"}`, `{"message"}`, or not JSON."""
    if isinstance(body, dict):
        for field in ("error", "message"):
            if isinstance(body.get(field), str) and body[field].strip():
                return str(body[field]).strip()[:500]
    return None


def _detail(response: httpx.Response) -> str:
    message = _message(_json_or_none(response))
    return f" {message}" if message else ""


def _int(body: Any, field: str) -> int | None:
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _network_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
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
