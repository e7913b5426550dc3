"""list_tracks through a real MCP client against the sandbox: the account's recent songs, paging, one job's tracks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from suno_stems_mcp.sandbox import ThreadedSandbox
from suno_stems_mcp.sandbox.seed import demo_id

from .support import FAILED, PROCESSING, SEEDED_STEMS, SONG, SONG_2, connected, error, ok, settings_for

pytestmark = pytest.mark.anyio

SONG_3 = demo_id("Golden Hour Drive")
NEWEST_FIRST = [SONG_3, SONG_2, SEEDED_STEMS, SONG]
"""The seeded COMPLETED Suno jobs, newest first (created 1 h, 2 h, 2.5 h and 3 h ago)."""
TRACK_FIELDS = {"job_id", "index", "track_id", "title", "duration", "audio_url", "image_url", "tags", "splittable",
                "why_not"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def jobs_in(tracks: list[dict[str, Any]]) -> list[str]:
    """The job ids of `tracks`, each once, in the order they first appear."""
    return list(dict.fromkeys(track["job_id"] for track in tracks))


def list_requests(running: ThreadedSandbox) -> list[Any]:
    return [r for r in running.sandbox.requests("GET", "/v2/jobs") if r.path == "/v2/jobs"]


async def test_without_job_id_it_lists_the_tracks_of_the_finished_jobs_newest_first(live_sandbox: ThreadedSandbox,
                                                                                    tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {}))
    tracks = page["tracks"]
    assert len(tracks) == 8
    assert jobs_in(tracks) == NEWEST_FIRST
    assert [t["index"] for t in tracks] == [1, 2] * 4
    # a field with nothing to say is left out: a song's track has no why_not, a stems track no image or tags
    assert all({"job_id", "index", "track_id", "splittable"} <= set(t) <= TRACK_FIELDS for t in tracks)
    assert all(("why_not" in t) != t["splittable"] for t in tracks)
    assert (page["has_more"], page.get("next_cursor")) == (False, None)
    assert "split_stems" in page["note"]
    query = list_requests(live_sandbox)[0].query
    assert "model=suno" in query and "status=COMPLETED" in query


async def test_song_tracks_carry_their_details_and_are_splittable(live_sandbox: ThreadedSandbox,
                                                                   tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        tracks = ok(await client.call_tool("list_tracks", {}))["tracks"]
    songs = [t for t in tracks if t["job_id"] != SEEDED_STEMS]
    assert len(songs) == 6
    assert [t["title"] for t in songs] == ["Golden Hour Drive"] * 2 + ["Paper Satellites"] * 2 + ["Midnight Harbor"] * 2
    for track in songs:
        assert (track["splittable"], track.get("why_not")) == (True, None)
        assert track["duration"] == 2.0
        assert track["audio_url"].startswith(live_sandbox.url + "/cdn/audio/")
        assert track["image_url"].startswith(live_sandbox.url + "/cdn/images/")
        assert track["tags"] and track["track_id"] not in ("vocals", "instrumental")
    harbor = [t for t in songs if t["job_id"] == SONG]
    assert harbor[0]["tags"] == "dream pop, female vocals, shimmering guitars"
    assert harbor[0]["track_id"] != harbor[1]["track_id"]


async def test_the_tracks_of_a_stems_job_are_listed_as_not_splittable_with_the_reason(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        tracks = ok(await client.call_tool("list_tracks", {}))["tracks"]
    stems = [t for t in tracks if t["job_id"] == SEEDED_STEMS]
    assert [(t["index"], t["track_id"]) for t in stems] == [(1, "vocals"), (2, "instrumental")]
    assert all(t["splittable"] is False for t in stems)
    assert all(t.get("why_not") and "stems" in t.get("why_not") and "original song" in t.get("why_not") for t in stems)


async def test_processing_and_failed_jobs_are_not_listed(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        tracks = ok(await client.call_tool("list_tracks", {"limit": 50}))["tracks"]
    listed = set(jobs_in(tracks))
    assert PROCESSING not in listed and FAILED not in listed
    assert listed == set(NEWEST_FIRST)


async def test_limit_1_gives_one_jobs_tracks_and_a_cursor(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"limit": 1}))
    assert jobs_in(page["tracks"]) == [SONG_3] and len(page["tracks"]) == 2
    assert page["has_more"] is True and isinstance(page.get("next_cursor"), str) and page.get("next_cursor")
    assert "cursor=next_cursor" in page["note"]


async def test_following_next_cursor_yields_every_job_once_in_the_order_of_one_big_page(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        whole = ok(await client.call_tool("list_tracks", {"limit": 50}))
        pages = [ok(await client.call_tool("list_tracks", {"limit": 1}))]
        while pages[-1]["has_more"]:
            assert len(pages) < 10, "paging does not end"
            cursor = pages[-1].get("next_cursor")
            pages.append(ok(await client.call_tool("list_tracks", {"limit": 1, "cursor": cursor})))
    assert [jobs_in(p["tracks"]) for p in pages] == [[job] for job in NEWEST_FIRST]
    assert [t for p in pages for t in p["tracks"]] == whole["tracks"]
    assert (pages[-1]["has_more"], pages[-1].get("next_cursor")) == (False, None)


@pytest.mark.parametrize(("limit", "says"), [(0, "at least 1"), (51, "at most 50")])
async def test_a_limit_out_of_range_is_a_clear_error_and_sends_nothing(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                                       limit: int, says: str) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("list_tracks", {"limit": limit}))
    assert "Invalid arguments for list_tracks" in message
    assert f"limit: must be {says} (got {limit})" in message
    assert live_sandbox.sandbox.requests(path_prefix="/v2") == []


async def test_with_job_id_it_lists_that_songs_two_tracks(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"job_id": SONG_2}))
    tracks = page["tracks"]
    assert [(t["job_id"], t["index"], t["title"]) for t in tracks] == [
        (SONG_2, 1, "Paper Satellites"), (SONG_2, 2, "Paper Satellites")]
    assert all(t["splittable"] is True and t.get("why_not") is None for t in tracks)
    assert (page["has_more"], page.get("next_cursor")) == (False, None)
    assert "split_stems" in page["note"] and "11 credits" in page["note"]
    assert [r.path for r in live_sandbox.sandbox.requests("GET", "/v2")] == [f"/v2/jobs/{SONG_2}"]


async def test_with_the_seeded_stems_job_its_tracks_are_not_splittable(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"job_id": SEEDED_STEMS}))
    assert [t["track_id"] for t in page["tracks"]] == ["vocals", "instrumental"]
    assert [t["splittable"] for t in page["tracks"]] == [False, False]
    assert all(t.get("why_not") for t in page["tracks"])
    assert "stems result" in page["note"]


async def test_a_processing_job_has_no_tracks_and_a_note_to_call_get_job(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"job_id": PROCESSING}))
    assert page["tracks"] == [] and page["has_more"] is False
    assert "processing" in page["note"]
    assert f"get_job with job_id={PROCESSING}" in page["note"]


async def test_a_failed_job_has_no_tracks_and_a_note_with_the_reason(live_sandbox: ThreadedSandbox,
                                                                     tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"job_id": FAILED}))
    assert page["tracks"] == []
    assert "FAILED" in page["note"] and "Generation failed: content policy." in page["note"]


async def test_an_unknown_job_id_is_an_error_that_says_to_call_list_tracks(live_sandbox: ThreadedSandbox,
                                                                           tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("list_tracks", {"job_id": UNKNOWN}))
    assert f"There is no job {UNKNOWN}" in message
    assert "Call list_tracks without job_id" in message


async def test_a_malformed_job_id_is_an_argument_error_and_nothing_is_sent(live_sandbox: ThreadedSandbox,
                                                                           tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("list_tracks", {"job_id": "song-1"}))
    assert "Invalid arguments for list_tracks" in message
    assert "job_id: must be an apiframe job id" in message and "'song-1'" in message
    assert live_sandbox.sandbox.requests() == []


async def test_an_account_with_no_songs_gets_an_empty_list_and_a_helpful_note(live_sandbox: ThreadedSandbox,
                                                                              tmp_path: Path) -> None:
    key = "afk_test_account_without_any_songs"
    live_sandbox.sandbox.add_account(key, credits=100)
    async with connected(settings_for(live_sandbox, tmp_path, api_key=SecretStr(key))) as client:
        page = ok(await client.call_tool("list_tracks", {}))
    assert page == {"tracks": [], "has_more": False, "note": page["note"]}
    assert "No finished Suno songs" in page["note"] and "Make one with apiframe first" in page["note"]
    assert list_requests(live_sandbox)[0].headers["x-api-key"] == key


@pytest.mark.parametrize("fault", [{"status": 503, "body": "json"}, {"status": 502, "body": "html"},
                                   {"drop": "before"}, {"body": "malformed"}],
                         ids=["503", "502-html", "dropped", "malformed"])
async def test_a_transient_fault_on_the_listing_is_retried_and_the_call_succeeds(
        live_sandbox: ThreadedSandbox, tmp_path: Path, fault: dict[str, Any]) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs", **fault)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {}))
    assert jobs_in(page["tracks"]) == NEWEST_FIRST
    assert len(list_requests(live_sandbox)) == 2


async def test_a_transient_fault_reading_one_job_is_retried(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs/*", status=503, times=2)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = ok(await client.call_tool("list_tracks", {"job_id": SONG}))
    assert [t["index"] for t in page["tracks"]] == [1, 2]
    assert len(live_sandbox.sandbox.requests("GET", f"/v2/jobs/{SONG}")) == 3


async def test_a_bad_cursor_is_an_error_that_says_to_start_again_without_it(live_sandbox: ThreadedSandbox,
                                                                            tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("list_tracks", {"cursor": "not-a-cursor"}))
    said = message.removeprefix("Error executing tool list_tracks: ")
    assert "cursor" in said
    assert "list_tracks" in said, said
