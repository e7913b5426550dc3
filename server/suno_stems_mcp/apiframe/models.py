"""apiframe's answers, read leniently: unknown fields are ignored, missing optional ones tolerated."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
STEM_IDS = ("vocals", "instrumental")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ApiTrack(_Wire):
    id: str
    audio_url: str | None = Field(None, alias="audioUrl")
    image_url: str | None = Field(None, alias="imageUrl")
    title: str | None = None
    tags: str | None = None
    duration: float | None = None


class ApiJob(_Wire):
    id: str
    status: str
    model: str | None = None
    progress: int | None = None
    error: str | None = None
    credit_cost: int | None = Field(None, alias="creditCost")
    created_at: str | None = Field(None, alias="createdAt")
    completed_at: str | None = Field(None, alias="completedAt")
    expired: bool = False
    input: dict[str, Any] | None = None
    result: Any = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def tracks(self) -> list[ApiTrack]:
        """`result.tracks`, skipping anything that is not a track (the result is untyped in the spec)."""
        raw = self.result.get("tracks") if isinstance(self.result, dict) else None
        tracks = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
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
    next_cursor: str | None = Field(None, validation_alias=AliasChoices("nextCursor", "next_cursor"))
    has_more: bool = Field(False, validation_alias=AliasChoices("hasMore", "has_more"))


class Submission(_Wire):
    """The 202 of a submission: the job's id and its status when the answer was written."""

    job_id: str = Field(alias="jobId")
    status: str
    server_time: float | None = None
    """When apiframe wrote the answer (its `Date` header, epoch seconds), to tell a replay from a new job."""
