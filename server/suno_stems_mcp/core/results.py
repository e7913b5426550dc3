"""What the use cases return, and so what the tools return: their models are the tools' output schemas.

A field with nothing to say is left out of a result (and so is optional in the schema) rather than sent as
null: smaller for the model, and one type per field for the schema converters.

Descriptions are short on purpose, and left out of the published output schemas (see tools.catalog): hosts
do not show those to the model, and the README documents each field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Track(_Out):
    id: str = Field(description="'vocals', 'instrumental', or a Suno clip id")
    title: str | None = None
    duration: float | None = Field(None, description="seconds")
    audio_url: str | None = None
    image_url: str | None = None
    tags: str | None = None
    file: str | None = Field(None, description="absolute path of the saved file, once saved")


class Source(_Out):
    parent_job_id: str
    index: int | None = None
    track_id: str | None = None
    title: str | None = Field(None, description="the song's title")


class Job(_Out):
    """A stems (or song) job, as split_stems and get_job return it."""

    job_id: str
    status: str = Field(description="QUEUED, PROCESSING, COMPLETED, FAILED or CANCELLED")
    done: bool = Field(description="true once COMPLETED, FAILED or CANCELLED")
    progress: int | None = Field(None, description="0-100")
    credit_cost: int | None = Field(None, description="credits charged (0 after a refund)")
    error: str | None = None
    expired: bool = Field(description="true once apiframe purged the files (about 24 h after completion)")
    created_at: str | None = None
    completed_at: str | None = None
    tracks: list[Track]
    mixer: str | None = Field(None, description="absolute path of mixer.html beside the saved stems: opened in a "
                              "browser, it plays them together")
    source: Source | None = Field(None, description="the track that was split, when known")
    reused: bool = Field(description="true when nothing new was charged for this call")
    sandbox: bool = Field(description="true when served by the built-in emulator, not apiframe")
    next_step: str = Field(description="what happened and what to do next")


class StemAudio(_Out):
    """One chunk of a stem's bytes, as stem_audio returns it to the mixer view."""

    job_id: str
    stem: str
    offset: int
    next_offset: int | None = Field(None, description="where the next chunk starts; absent after the last one")
    size: int = Field(description="bytes of the whole file")
    mime: str
    data: str = Field(description="base64 of this chunk")


class TrackRef(_Out):
    job_id: str
    index: int = Field(description="1-based position in the job")
    track_id: str
    title: str | None = None
    duration: float | None = None
    audio_url: str | None = None
    image_url: str | None = None
    tags: str | None = None
    splittable: bool
    why_not: str | None = None


class TrackList(_Out):
    """Suno tracks, newest first."""

    tracks: list[TrackRef]
    next_cursor: str | None = Field(None, description="pass as cursor for the next page")
    has_more: bool
    note: str
