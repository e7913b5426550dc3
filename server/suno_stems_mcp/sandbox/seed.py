"""Every sandbox account's history: a few finished songs, one still cooking, one failed, one already split.

The demo account's jobs have the same ids in every sandbox (`demo_id`); any other account's have ids of
its own (`seeded_id`), so no two accounts share a job.
"""

from __future__ import annotations

import uuid

from .config import DEMO_KEY
from .music import song_tracks, stems_tracks
from .store import Account, JobPlan, Store

DEMO_SONGS = (
    ("Midnight Harbor", "dream pop, female vocals, shimmering guitars", 3 * 3600),
    ("Paper Satellites", "indie folk, warm male vocals, acoustic", 2 * 3600),
    ("Golden Hour Drive", "synthwave, upbeat, female vocals", 1 * 3600),
)


def demo_id(name: str) -> str:
    """Stable ids, so the demo data is the same in every sandbox."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"suno-stems-mcp-sandbox:{name}"))


def seeded_id(key: str, name: str) -> str:
    """The id of the seeded job `name` (a song title, or "<title> stems") in the account of `key`."""
    return demo_id(name) if key == DEMO_KEY else demo_id(f"{key}\x1f{name}")


def seed_demo_data(store: Store, account: Account) -> None:
    now = store.now()
    duration = store.config.track_seconds
    done = JobPlan(queued_for=1.0, runs_for=30.0)
    songs = []
    for title, tags, age in DEMO_SONGS:
        job_id = seeded_id(account.key, title)
        songs.append(
            store.create_job(
                account,
                kind="song",
                input={"model": "suno", "prompt": f"{title}: {tags}"},
                tracks=song_tracks(job_id, title, tags, duration),
                job_id=job_id,
                created_at=now - age,
                plan=done,
                charge=False,
            )
        )
    first = songs[0]
    store.create_job(
        account,
        kind="stems",
        input={"parentJobId": first.id, "action": "stems", "index": 1},
        tracks=stems_tracks(first.tracks[0]),
        job_id=seeded_id(account.key, "Midnight Harbor stems"),
        created_at=now - 2.5 * 3600,
        plan=done,
        charge=False,
    )
    failed_id = seeded_id(account.key, "Static Bloom")
    store.create_job(
        account,
        kind="song",
        input={"model": "suno", "prompt": "Static Bloom: shoegaze, distorted"},
        tracks=song_tracks(failed_id, "Static Bloom", "shoegaze, distorted", duration),
        job_id=failed_id,
        created_at=now - 5 * 3600,
        plan=JobPlan(outcome="FAILED", queued_for=1.0, runs_for=20.0, error="Generation failed: content policy."),
        charge=False,
    )
    cooking_id = seeded_id(account.key, "Neon Rain")
    store.create_job(
        account,
        kind="song",
        input={"model": "suno", "prompt": "Neon Rain: city pop, female vocals"},
        tracks=song_tracks(cooking_id, "Neon Rain", "city pop, female vocals", duration),
        job_id=cooking_id,
        created_at=now - 20,
        plan=JobPlan(queued_for=2.0, runs_for=3600.0),
        charge=False,
    )
    store.settle()
