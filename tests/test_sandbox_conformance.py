"""Every kind of answer the sandbox gives validates against apiframe's official OpenAPI description.

The spec is apiframe's (proprietary), so it is read from `../shared/apiframe/openapi.json` (or the path in
`APIFRAME_OPENAPI`) and never copied here; without it these tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from suno_stems_mcp.sandbox import DEMO_KEY, INACTIVE_KEY, Sandbox
from suno_stems_mcp.sandbox.seed import demo_id

from .conftest import FakeClock

pytestmark = pytest.mark.anyio

SHARED_SPEC = Path(__file__).resolve().parents[2] / "shared/apiframe/openapi.json"
SPEC_PATH = Path(os.environ.get("APIFRAME_OPENAPI", SHARED_SPEC))
SPEC_URI = "urn:apiframe:openapi"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"apiframe's openapi.json is not at {SPEC_PATH} (set APIFRAME_OPENAPI to check conformance)")
    return dict(json.loads(SPEC_PATH.read_text()))


class Conformance:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"), template)
            for template in spec["paths"]
        ]
        self.checked: set[str] = set()

    def template(self, path: str) -> str:
        return next(t for pattern, t in self.routes if pattern.match(path))

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        template = self.template(path)
        responses = self.spec["paths"][template][method.lower()]["responses"]
        documented = responses.get(str(status))
        if documented is None:  # e.g. 404/409 on the action route: the generic error envelope
            return {"$ref": f"{SPEC_URI}#/components/schemas/ErrorResponse"}
        schema = documented["content"]["application/json"]["schema"]
        return {"$ref": SPEC_URI + schema["$ref"]} if "$ref" in schema else schema

    def check(self, response: httpx.Response) -> None:
        method, path, status = response.request.method, response.request.url.path, response.status_code
        schema = self.schema_for(method, path, status)
        validator = Draft202012Validator(schema, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
        )
        self.checked.add(f"{method} {self.template(path)} {status}")


async def test_every_kind_of_answer_conforms(spec: dict[str, Any], clock: FakeClock, sandbox: Sandbox) -> None:
    conformance = Conformance(spec)
    sandbox.add_account("afk_test_broke", credits=0, name="Broke")
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://sandbox.test",
                                 headers={"X-API-Key": DEMO_KEY}) as api:

        async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            response = await api.request(method, path, **kwargs)
            conformance.check(response)
            return response

        song = demo_id("Midnight Harbor")
        stems = {"parentJobId": song, "action": "stems", "index": 1}
        # /v2/me, and auth failures on every route
        await call("GET", "/v2/me")
        for method, path in [("GET", "/v2/me"), ("GET", "/v2/jobs"), ("GET", f"/v2/jobs/{song}"),
                             ("POST", "/v2/music/suno/action"), ("POST", "/v2/music/generate")]:
            await call(method, path, headers={"X-API-Key": "afk_nope"}, json={})
            await call(method, path, headers={"X-API-Key": INACTIVE_KEY}, json={})
        # every job status, in a single job and in lists
        for job_id in [song, demo_id("Midnight Harbor stems"), demo_id("Neon Rain"), demo_id("Static Bloom")]:
            await call("GET", f"/v2/jobs/{job_id}")
        queued = (await call("POST", "/v2/music/suno/action", json=stems, headers={"Idempotency-Key": "c"})).json()
        await call("GET", f"/v2/jobs/{queued['jobId']}")
        cancelled = (await call("POST", "/v2/music/suno/action", json={**stems, "index": 2})).json()["jobId"]
        sandbox.store.cancel(cancelled)
        await call("GET", f"/v2/jobs/{cancelled}")
        await call("POST", "/v2/music/suno/action", json=stems, headers={"Idempotency-Key": "c"})  # replay
        await call("POST", "/v2/music/suno/action", json={**stems, "index": 2}, headers={"Idempotency-Key": "c"})
        clock.advance(60)
        await call("GET", f"/v2/jobs/{queued['jobId']}")
        clock.advance(sandbox.config.retention_seconds)
        await call("GET", f"/v2/jobs/{queued['jobId']}")  # expired
        await call("GET", "/v2/jobs", params={"include_models": "true", "limit": 2})
        await call("GET", "/v2/jobs", params={"status": "FAILED"})
        # every error body
        await call("GET", "/v2/jobs/not-a-uuid")
        await call("GET", f"/v2/jobs/{uuid.uuid4()}")
        await call("GET", "/v2/jobs", params={"limit": 0})
        await call("POST", "/v2/music/suno/action", json={**stems, "index": 3, "extra": True})
        await call("POST", "/v2/music/suno/action", json={**stems, "parentJobId": demo_id("Neon Rain")})
        await call("POST", "/v2/music/suno/action", json={**stems, "parentJobId": str(uuid.uuid4())})
        await call("POST", "/v2/music/generate", json={"model": "suno", "prompt": "x"},
                   headers={"X-API-Key": "afk_test_broke"})
        await call("POST", "/v2/music/generate", json={"model": "suno", "prompt": "a song"})
        for action in ("extend", "cover", "add_vocals"):
            await call("POST", "/v2/music/suno/action",
                       json={"parentJobId": song, "action": action, "index": 1, "prompt": "la"})
        sandbox.config.rate_limit = 0
        await call("GET", "/v2/me")

    expected = {
        "GET /v2/me 200", "GET /v2/me 401", "GET /v2/me 403", "GET /v2/me 429",
        "GET /v2/jobs/{id} 200", "GET /v2/jobs/{id} 400", "GET /v2/jobs/{id} 404",
        "GET /v2/jobs 200", "GET /v2/jobs 400",
        "POST /v2/music/suno/action 202", "POST /v2/music/suno/action 400", "POST /v2/music/suno/action 404",
        "POST /v2/music/suno/action 409", "POST /v2/music/generate 202", "POST /v2/music/generate 402",
    }
    assert expected <= conformance.checked
