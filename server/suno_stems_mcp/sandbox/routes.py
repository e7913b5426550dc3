"""The sandbox's HTTP routes: apiframe's v2 endpoints for Suno songs and stems, and the CDN files."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Literal

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import audio
from .config import AUDIO_FORMATS, CREDITS_PER_JOB
from .music import ACTION_TITLES, song_tracks, stems_tracks, title_from_prompt
from .store import Account, Job, Kind
from .validation import is_uuid, validate_generate, validate_suno_action
from .views import job_json, me_json

if TYPE_CHECKING:
    from .emulator import Sandbox

JOB_STATUSES = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")


class ApiProblem(Exception):
    """An error answer in apiframe's shape: `{"error": ...}` plus any extra fields."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"error": error, **extra}
        self.headers = headers


def _validation_problem(details: dict[str, list[str]], error: str = "Validation failed") -> ApiProblem:
    return ApiProblem(400, error, details=details)



def build_routes(sandbox: Sandbox) -> Starlette:
    store = sandbox.store

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def authenticate(request: Request) -> Account:
        """The caller's account (a sandbox key opens its own); money settled. One transaction in a shared store."""
        with store.lock:
            account = store.account(request.headers.get("x-api-key"))
            if account is None:
                raise ApiProblem(401, "Missing or invalid API key. Pass your key in the X-API-Key header.")
            if not account.active:
                raise ApiProblem(403, "This API key is inactive.")
            wait = store.rate_limited(account.key)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                raise ApiProblem(429, "Rate limit exceeded", headers={"Retry-After": str(seconds)})
            store.settle()
        return account

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _validation_problem({"": ["Body must be valid JSON"]}, "Invalid JSON body") from None

    def idempotency_key(request: Request) -> str | None:
        key = request.headers.get("idempotency-key")
        if key is not None and (not key or len(key) > 255):
            raise _validation_problem({"Idempotency-Key": ["Must be 1 to 255 characters"]})
        return key

    def accepted(job: Job) -> JSONResponse:
        status = job.status(store.now())
        return JSONResponse({"jobId": job.id, "status": "FAILED" if status == "CANCELLED" else status},
                            status_code=202)

    def replay(account: Account, key: str | None, fingerprint: str) -> JSONResponse | None:
        if key is None:
            return None
        job, conflict = store.idempotent_job(account, key, fingerprint)
        if conflict:
            raise ApiProblem(409, "Idempotency-Key was already used with a different request body.")
        return accepted(job) if job is not None else None

    def charge_check(account: Account) -> None:
        if account.credits < CREDITS_PER_JOB:
            raise ApiProblem(402, "Insufficient credits", creditsRequired=CREDITS_PER_JOB,
                             creditsAvailable=max(0, account.credits))

    def submit(request: Request, account: Account, key: str | None, fingerprint: str, *, kind: Kind,
               body: dict[str, Any], tracks_for: Any) -> JSONResponse:
        with store.lock:  # the check, the charge and the key are one step: two racing replays make one job
            again = replay(account, key, fingerprint)
            if again is not None:
                return again
            charge_check(account)
            job_id = str(uuid.uuid4())
            job = store.create_job(
                account,
                kind=kind,
                input=body,
                tracks=tracks_for(job_id),
                webhook_url=body.get("webhookUrl"),
                webhook_events=tuple(body.get("webhookEvents") or (("completed", "failed")
                                                                   if body.get("webhookUrl") else ())),
                base_url=base_url(request),
                job_id=job_id,
            )
            if key is not None:
                store.remember_key(account, key, fingerprint, job)
        if job.webhook_url:
            sandbox.webhooks.start(job)
        return accepted(job)

    async def accepted_body(request: Request, validate: Any) -> tuple[Account, Any, str | None]:
        """Who asks, the valid body they sent, and their Idempotency-Key: the start of every submission."""
        account = authenticate(request)
        body = await json_body(request)
        details = validate(body)
        if details:
            raise _validation_problem(details)
        return account, body, idempotency_key(request)

    async def generate(request: Request) -> Response:
        account, body, key = await accepted_body(request, validate_generate)
        params = body.get("sunoParams") or {}
        title = params.get("title") or title_from_prompt(body["prompt"])
        tags = params.get("style") or None
        duration = sandbox.config.track_seconds
        return submit(request, account, key, store.fingerprint("POST", request.url.path, body), kind="song",
                      body=body, tracks_for=lambda job_id: song_tracks(job_id, title, tags, duration))

    async def suno_action(request: Request) -> Response:
        account, body, key = await accepted_body(request, validate_suno_action)
        fingerprint = store.fingerprint("POST", request.url.path, body)
        with store.lock:
            again = replay(account, key, fingerprint)
            if again is not None:
                return again
            parent = store.job_for(account, body["parentJobId"])
            if parent is None:
                raise ApiProblem(404, "Parent job not found.")
            if parent.kind == "stems":
                raise ApiProblem(409, "A stems job cannot be the parent of a follow-up action; "
                                      "run the action on the original song job.")
            parent_status = parent.status(store.now())
            if parent_status != "COMPLETED":
                raise ApiProblem(409, f"Parent job is {parent_status}; follow-up actions need a COMPLETED "
                                      "parent.")
            if "index" in body:
                source = parent.tracks[int(body["index"]) - 1]
            else:
                found = [track for track in parent.tracks if track.id == body["trackId"]]
                if not found:
                    raise _validation_problem({"trackId": ["No track with this id in the parent job"]})
                source = found[0]
        action = body["action"]
        if action == "stems":
            return submit(request, account, key, fingerprint, kind="stems", body=body,
                          tracks_for=lambda _: stems_tracks(source))
        title = body.get("title") or ACTION_TITLES[action].format(source.title)[:80]
        tags = body.get("style") or source.tags
        duration = source.duration + (30.0 if action == "extend" else 0.0)
        return submit(request, account, key, fingerprint, kind="song", body=body,
                      tracks_for=lambda job_id: song_tracks(job_id, title, tags, duration))

    async def get_job(request: Request) -> Response:
        account = authenticate(request)
        job_id = request.path_params["job_id"]
        if not is_uuid(job_id):
            raise ApiProblem(400, "Invalid job id: it must be a UUID.")
        job = store.job_for(account, job_id)
        if job is None:
            raise ApiProblem(404, "Job not found.")
        answer = job_json(store, job, base_url(request))
        if job.kind == "stems" and not sandbox.config.stems_input:
            answer.pop("input", None)
        return JSONResponse(answer)

    async def list_jobs(request: Request) -> Response:
        account = authenticate(request)
        query = request.query_params
        details: dict[str, list[str]] = {}
        status = query.get("status")
        if status is not None and status not in JOB_STATUSES:
            details["status"] = [f"Invalid enum value. Expected {' | '.join(JOB_STATUSES)}, received {status!r}"]
        limit = 20
        if "limit" in query:
            try:
                limit = int(query["limit"])
                if not 1 <= limit <= 100:
                    raise ValueError
            except ValueError:
                details["limit"] = ["Number must be an integer from 1 to 100"]
        if query.get("scope", "user") not in ("user", "team"):
            details["scope"] = ["Invalid enum value. Expected 'user' | 'team'"]
        search = query.get("search")
        if search is not None and not is_uuid(search):
            details["search"] = ["Invalid uuid"]
        after = None
        if query.get("cursor"):
            after = _decode_cursor(query["cursor"])
            if after is None:
                details["cursor"] = ["Invalid cursor"]
        if details:
            raise _validation_problem(details, "Invalid query parameters")
        jobs, has_more = store.list_jobs(account, status=status, model=query.get("model"), search=search,
                                         after=after, limit=limit)
        page: dict[str, Any] = {
            "jobs": [job_json(store, job, base_url(request), in_list=True) for job in jobs],
            "nextCursor": _encode_cursor(jobs[-1]) if has_more and jobs else None,
            "hasMore": has_more,
        }
        if query.get("include_models") == "true":
            page["models"] = sorted({job.model for job in store.jobs.values() if job.owner == account.key})
        return JSONResponse(page)

    async def me(request: Request) -> Response:
        return JSONResponse(me_json(authenticate(request)))

    def finished_track(name: str, suffixes: tuple[str, ...]) -> tuple[Job, int, str]:
        job_id, _, rest = name.rpartition("-")
        number, dot, extension = rest.partition(".")
        job = store.jobs.get(job_id)
        now = store.now()
        if (job is None or dot != "." or extension not in suffixes or not number.isdigit()
                or int(number) >= len(job.tracks) or job.status(now) != "COMPLETED"
                or job.expired(now, sandbox.config.retention_seconds)):
            raise HTTPException(404, "Not Found")
        return job, int(number), extension

    async def audio_file(request: Request) -> Response:
        # Both formats answer, whatever the sandbox serves now: links handed out before a restart keep working.
        job, n, extension = finished_track(request.path_params["name"], AUDIO_FORMATS)
        track = job.tracks[n]
        song = audio.Song(seed=track.seed, duration=track.duration)
        if extension == "mp3":
            if not audio.mp3_available():
                raise HTTPException(404, "Not Found")
            body = await anyio.to_thread.run_sync(audio.mp3_bytes, song, track.part)
            size = len(body)
        else:
            size = audio.wav_size(song)
        media_type = "audio/mpeg" if extension == "mp3" else "audio/wav"
        etag = f'"{track.seed:x}-{track.part}-{size:x}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "public, max-age=86400",
                   "Last-Modified": formatdate(job.final_at(store.now()) or store.now(), usegmt=True)}
        wanted = _byte_range(request.headers, size, etag)
        if wanted == "unsatisfiable":
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, stop = wanted or (0, size)
        headers["Content-Length"] = str(stop - start)
        status = 200
        if wanted is not None:
            status, headers["Content-Range"] = 206, f"bytes {start}-{stop - 1}/{size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        if extension == "mp3":
            return Response(body[start:stop], status_code=status, headers=headers, media_type=media_type)
        return StreamingResponse(_iterate(audio.iter_wav(song, track.part, start=start, stop=stop)),
                                 status_code=status, headers=headers, media_type=media_type)

    async def image_file(request: Request) -> Response:
        job, n, _ = finished_track(request.path_params["name"], ("png",))
        return Response(audio.cover_png(job.tracks[n].seed), media_type="image/png")

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    async def framework_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/cdn/"):
            return Response("Not Found", status_code=exc.status_code, media_type="text/plain")
        return JSONResponse({"message": f"Route {request.method}:{request.url.path} not found"
                             if exc.status_code == 404 else exc.detail}, status_code=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.aclose()

    return Starlette(
        routes=[
            Route("/v2/music/generate", generate, methods=["POST"]),
            Route("/v2/music/suno/action", suno_action, methods=["POST"]),
            Route("/v2/jobs", list_jobs, methods=["GET"]),
            Route("/v2/jobs/{job_id}", get_job, methods=["GET"]),
            Route("/v2/me", me, methods=["GET"]),
            Route("/cdn/audio/{name}", audio_file, methods=["GET", "HEAD"]),
            Route("/cdn/images/{name}", image_file, methods=["GET"]),
        ],
        exception_handlers={ApiProblem: problem, HTTPException: framework_error},
        lifespan=lifespan,
    )


async def _iterate(chunks: Any) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _byte_range(headers: Mapping[str, str], size: int, etag: str) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The [start, stop) a `Range: bytes=...` header asks for, as a CDN reads it: one range only (anything else
    gets the whole file), `If-Range` honoured with strong comparison, a start past the end unsatisfiable."""
    asked = headers.get("range", "")
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", asked.strip())
    if match is None or headers.get("if-range", etag) != etag or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, stop = max(0, size - int(last)), size
    elif last and int(last) < int(first):
        return None
    else:
        start, stop = int(first), min(size, int(last) + 1) if last else size
    return "unsatisfiable" if start >= stop else (start, stop)


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at, job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        return float(created_at), str(job_id)
    except (ValueError, TypeError, binascii.Error):
        return None
