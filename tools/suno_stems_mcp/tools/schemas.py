"""The tools' schemas, in one place: what the model may pass, and what it gets back.

The SDK turns these into each tool's `inputSchema`, `outputSchema` and `structuredContent`. Descriptions
are short on purpose: every conversation pays for the whole `tools/list`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema


def _job_id(value: str) -> str:
    try:
        valid = len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("must be an apiframe job id, a uuid like 3f2b8c1e-9d4a-4e8b-a1c2-5d6e7f8a9b0c")
    return value.lower()  # uuids are case-insensitive; apiframe writes them in lower case


JobId = Annotated[str, AfterValidator(_job_id), WithJsonSchema({"type": "string", "format": "uuid"})]
WebhookEvent = Literal["progress", "completed", "failed"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Track(_Out):
    id: str = Field(description="'vocals', 'instrumental', or a Suno clip id")
    title: str | None
    duration: float | None = Field(description="seconds")
    audio_url: str | None
    image_url: str | None
    tags: str | None
    file: str | None = Field(description="absolute path of the saved file, or null")


class Source(_Out):
    parent_job_id: str
    index: int | None
    track_id: str | None


class Job(_Out):
    """A stems (or song) job, as split_stems and get_job return it."""

    job_id: str
    status: str = Field(description="QUEUED, PROCESSING, COMPLETED, FAILED or CANCELLED")
    done: bool = Field(description="true once COMPLETED, FAILED or CANCELLED")
    progress: int | None = Field(description="0-100")
    credit_cost: int | None = Field(description="credits charged (0 after a refund)")
    error: str | None
    expired: bool = Field(description="true once apiframe purged the files (about 24 h after completion)")
    created_at: str | None
    completed_at: str | None
    tracks: list[Track]
    source: Source | None = Field(description="the track that was split, when known")
    reused: bool = Field(description="true when an existing job was returned and nothing new was charged")
    sandbox: bool = Field(description="true when served by the built-in emulator, not apiframe")
    next_step: str = Field(description="what happened and what to do next")


class TrackRef(_Out):
    job_id: str
    index: int = Field(description="1-based position in the job")
    track_id: str
    title: str | None
    duration: float | None
    audio_url: str | None
    image_url: str | None
    tags: str | None
    splittable: bool
    why_not: str | None


class TrackList(_Out):
    """Suno tracks, newest first."""

    tracks: list[TrackRef]
    next_cursor: str | None = Field(description="pass as cursor for the next page")
    has_more: bool
    note: str
