"""Shared fixtures: sandboxes (in process and on a loopback port) and HTTP clients for them."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox

collect_ignore = [] if os.environ.get("SUNO_STEMS_FRAMEWORKS") else ["frameworks"]
"""The agent-framework suite builds a virtual environment per framework: .ci/run runs it as its own step."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Sandbox:
    """A sandbox on a clock the test moves by hand: lifecycles without sleeping."""
    return Sandbox(SandboxConfig.fast(clock=clock))


@pytest.fixture(params=["asgi", "loopback"])
async def api(request: pytest.FixtureRequest, sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client authenticated with the demo key: in process, then over a real socket."""
    headers = {"X-API-Key": DEMO_KEY}
    if request.param == "asgi":
        transport = httpx.ASGITransport(app=sandbox.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=headers) as c:
            yield c
    else:
        with ThreadedSandbox(sandbox) as running:
            async with httpx.AsyncClient(base_url=running.url, headers=headers, timeout=10) as c:
                yield c


@pytest.fixture
def live_sandbox() -> Iterator[ThreadedSandbox]:
    """A real-time fast sandbox on a loopback port."""
    with ThreadedSandbox(Sandbox(SandboxConfig.fast())) as running:
        yield running


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        import tempfile

        config.reliability_dir = Path(tempfile.mkdtemp(prefix="suno-stems-reliability-"))  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput["reliability_dir"] = str(node.config.reliability_dir)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers hand their reliability figures over; after a fully green run, the controller writes them where
    SUNO_STEMS_RELIABILITY_FILE says (tests/reliability.py)."""
    from . import reliability

    config = session.config
    if hasattr(config, "workerinput"):
        reliability.dump(Path(config.workerinput["reliability_dir"]) / f"{config.workerinput['workerid']}.json")
        return
    folder: Path = config.reliability_dir  # type: ignore[attr-defined]
    for fragment in sorted(folder.glob("*.json")):
        reliability.merge(fragment)
    shutil.rmtree(folder, ignore_errors=True)
    written = reliability.write_if_complete(session.testsfailed > 0 or exitstatus != 0)
    if written is not None:
        config.get_terminal_writer().line(f"wrote {written}")
