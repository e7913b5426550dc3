"""apiframe's answers, read leniently: unknown fields are ignored, and an optional field of the wrong type is
read as absent, so one odd field never hides a job id or the rest of a usable answer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WrapValidator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from ..vocabulary import FINAL_STATUSES, STEM_IDS, JobStatus


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _strict_type(kind: type) -> BeforeValidator:
    """No lax conversions: `true` is not the number 1, and 12 is not the text "12"."""

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))):
            return value
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return value
        return None

    return BeforeValidator(check)


OptionalText = Annotated[str | None, _strict_type(str), WrapValidator(_or_none)]
OptionalInt = Annotated[int | None, _strict_type(int), WrapValidator(_or_none)]
OptionalNumber = Annotated[float | None, _strict_type(float), WrapValidator(_or_none)]


def _status(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _flag(value: Any) -> bool:
    return value is True


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ApiTrack(_Wire):
    id: str
    audio_url: OptionalText = Field(None, alias="audioUrl")
    image_url: OptionalText = Field(None, alias="imageUrl")
    title: OptionalText = None
    tags: OptionalText = None
    duration: OptionalNumber = None


class ApiJob(_Wire):
    id: str
    status: Annotated[str, BeforeValidator(_status)]
    """Upper case; one of JobStatus, or whatever else apiframe said."""
    model: OptionalText = None
    progress: OptionalInt = None
    error: OptionalText = None
    credit_cost: OptionalInt = Field(None, alias="creditCost")
    created_at: OptionalText = Field(None, alias="createdAt")
    completed_at: OptionalText = Field(None, alias="completedAt")
    expired: Annotated[bool, BeforeValidator(_flag)] = False
    input: Annotated[dict[str, Any] | None, WrapValidator(_or_none)] = None
    result: Any = None
    server_time: float | None = Field(None, exclude=True)
    """When apiframe wrote this answer (its `Date` header, epoch seconds), set by the client."""

    @property
    def state(self) -> JobStatus | None:
        """The status, when it is one this server knows."""
        return JobStatus.known(self.status)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATUSES

    @property
    def tracks(self) -> list[ApiTrack]:
        """`result.tracks`, skipping anything that is not a track (the result is untyped in the spec) and any
        repeat of a track id already seen."""
        raw = self.result.get("tracks") if isinstance(self.result, dict) else None
        tracks: list[ApiTrack] = []
        seen: set[str] = set()
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] not in seen:
                seen.add(item["id"])
                tracks.append(ApiTrack.model_validate(item))
        return tracks

    @property
    def is_stems(self) -> bool:
        """A stems job: asked for with action "stems", or holding exactly the two fixed stem tracks."""
        if isinstance(self.input, dict) and self.input.get("action") == "stems":
            return True
        ids = tuple(track.id for track in self.tracks)
        return bool(ids) and set(ids) <= set(STEM_IDS)

    @property
    def parent_job_id(self) -> str | None:
        parent = self.input.get("parentJobId") if isinstance(self.input, dict) else None
        return parent if isinstance(parent, str) else None


class ApiJobPage(_Wire):
    jobs: list[ApiJob]
    next_cursor: OptionalText = Field(None, validation_alias=AliasChoices("nextCursor", "next_cursor"))
    has_more: Annotated[bool, BeforeValidator(_flag)] = Field(
        False, validation_alias=AliasChoices("hasMore", "has_more"))


class Submission(_Wire):
    """The 202 of a submission: the job's id and its status when the answer was written."""

    job_id: str = Field(alias="jobId")
    status: Annotated[str, BeforeValidator(_status)]
    server_time: float | None = None
    """When apiframe wrote the answer (its `Date` header, epoch seconds), to tell a replay from a new job."""


class Webhook(BaseModel):
    """Where and about what apiframe should notify, in canonical form (see core.idempotency.canonical_webhook)."""

    model_config = ConfigDict(frozen=True)

    url: str
    events: tuple[str, ...]
