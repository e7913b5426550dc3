"""What a server process remembers is bounded, however long it runs."""

from __future__ import annotations

from suno_stems_mcp.core.memory import Recent


def test_recent_forgets_the_oldest_beyond_its_limit() -> None:
    recent: Recent[str, int] = Recent(limit=3)
    for n in range(5):
        recent[f"job-{n}"] = n
    assert len(recent) == 3 and "job-0" not in recent and "job-1" not in recent
    assert recent.get("job-4") == 4 and recent.get("job-0") is None
    recent["job-2"] = 20  # touching an entry makes it the newest
    recent["job-5"] = 5
    assert "job-2" in recent and "job-3" not in recent
    assert recent.setdefault("job-5", 99) == 5 and recent.setdefault("job-6", 6) == 6
