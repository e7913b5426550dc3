"""The sandbox: an emulator of apiframe's v2 API as far as Suno songs and stems go, as an ASGI app.

`Sandbox` holds one emulated account world (state, faults, webhooks) and its ASGI `app`. Use it in process
with `httpx.ASGITransport(app=sandbox.app)`, or on a loopback port with `runner.ThreadedSandbox`. Its state
lives in memory, or, given a `state_dir`, in the file there that sandbox processes share
(`persistence.SharedStore`; `shared.SharedSandbox` also shares one port among them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import DEMO_KEY, SandboxConfig
from .fault_layer import FaultLayer
from .faults import Fault, FaultPlan
from .persistence import SharedStore
from .routes import build_routes
from .seed import seed_demo_data
from .store import Account, JobPlan, Kind, RequestRecord, Store
from .webhooks import WebhookDispatcher


class Sandbox:
    """One emulated apiframe: accounts, jobs, credits, idempotency, faults and webhooks."""

    demo_key = DEMO_KEY

    def __init__(self, config: SandboxConfig | None = None, *, state_dir: Path | None = None) -> None:
        self.config = config or SandboxConfig()
        seeder = seed_demo_data if self.config.seed_demo_data else None
        self.store = (Store(self.config, seeder=seeder) if state_dir is None
                      else SharedStore(state_dir, self.config, seeder=seeder))
        self.store.open_demo_accounts()
        self.faults = FaultPlan()
        self.webhooks = WebhookDispatcher(self.store)
        self.app = FaultLayer(self, build_routes(self))

    # conveniences for tests and the demo --------------------------------------------------------------

    def inject(self, route: str, **fault: Any) -> Fault:
        """Misbehave on purpose on `route` (see `faults.Fault` for what can be asked)."""
        return self.faults.add(Fault(route, **fault))

    def plan_next(self, plan: JobPlan | None = None, *, kinds: tuple[Kind, ...] = ("stems", "song"),
                  count: int = 1, **fields: Any) -> None:
        self.store.plan_next(plan or JobPlan(**fields), kinds=kinds, count=count)

    def add_account(self, key: str, *, credits: int, name: str = "Test", active: bool = True) -> Account:
        return self.store.add_account(key, credits=credits, name=name, active=active)

    @property
    def counters(self) -> Any:
        self.store.settle()
        return self.store.counters

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[RequestRecord]:
        with self.store.lock:
            records = list(self.store.requests)
        return [
            r for r in records if (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    def credits(self, key: str = DEMO_KEY) -> int:
        self.store.settle()
        return self.store.accounts[key].credits

    async def aclose(self) -> None:
        await self.webhooks.aclose()

    def close(self) -> None:
        """Let go of the shared state file, if any (once nothing serves this sandbox any more)."""
        self.store.close()


