"""What the sandbox's jobs produce: pairs of song tracks, and the two stems of a track."""

from __future__ import annotations

import hashlib
import uuid

from .store import TrackPlan


def seed_for(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:4], "big")


def song_tracks(job_id: str, title: str, tags: str | None, duration: float) -> list[TrackPlan]:
    """A Suno generation: always two takes of the song, each with its own clip id and its own audio."""
    return [
        TrackPlan(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-clip:{job_id}:{n}")),
            title=title,
            tags=tags,
            seed=seed_for(job_id, str(n)),
            part="mix",
            duration=duration,
            has_image=True,
        )
        for n in (1, 2)
    ]


def stems_tracks(source: TrackPlan) -> list[TrackPlan]:
    """The true vocals and instrumental of `source`: the same seed, the two halves of its mix."""
    return [
        TrackPlan(id=part, title=part.title(), tags=None, seed=source.seed, part=part, duration=source.duration,
                  has_image=False)
        for part in ("vocals", "instrumental")
    ]


def title_from_prompt(prompt: str) -> str:
    words = prompt.split()
    title = " ".join(words[:5]).strip(" .,;:!?\"'") or "Untitled"
    return title[:80].title()


ACTION_TITLES = {"extend": "{} (Extended)", "cover": "{} (Cover)", "add_vocals": "{} (With Vocals)"}
