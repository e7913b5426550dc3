"""Checks of the hosted-mode deployment recipes: Containerfile, Kubernetes manifests, local HAProxy.

Needs the `deploy` extra (pip install -e ".[deploy]"; .ci/run installs it); skips, saying so, without it.
The HAProxy tests need the haproxy binary (CI, as root: apt-get update && apt-get install -y haproxy) and skip,
saying so, without it. Everything listens on 127.0.0.1 only; every loop is bounded in requests and time.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "k8s"
CONTAINERFILE = DEPLOY / "Containerfile"
IGNOREFILE = DEPLOY / "Containerfile.dockerignore"
PINNED_K8S = "1.34.0"  # the Kubernetes version the manifests are validated against (strict schemas)
NEWEST_K8S = "1.37.0"  # ... and the newest kubernetes-validate 1.37.0 ships, so nothing relies on removed APIs

yaml = pytest.importorskip("yaml", reason="the deploy extra is not installed: pip install -e '.[deploy]'")

from . import local_lb  # noqa: E402

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None,
    reason="haproxy not installed; CI must run (as root): apt-get update && apt-get install -y haproxy")


def tool(name: str) -> str:
    """A console script installed by tests/requirements.txt, next to this interpreter or on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed: pip install -e '.[deploy]' (.ci/run does)")
    return found


# =============================================================================================================
# Containerfile
# =============================================================================================================
def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_reports_nothing():
    done = subprocess.run([tool("hadolint"), "--config", str(DEPLOY / ".hadolint.yaml"), "--no-color",
                           "--format", "json", str(CONTAINERFILE)], capture_output=True, text=True, timeout=60)
    findings = json.loads(done.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert done.returncode == 0, done.stderr
    # No finding is silenced inline either, unless justified on the same line.
    for n, line in enumerate(CONTAINERFILE.read_text().splitlines(), 1):
        if "hadolint ignore" in line:
            assert re.search(r"hadolint ignore=\S+\s+\S", line), f"line {n}: an ignore without a reason"


def test_hadolint_is_live(tmp_path):
    """Control: the same invocation does flag a bad Containerfile, so 'no findings' above means something."""
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m http.server\n")
    done = subprocess.run([tool("hadolint"), "--config", str(DEPLOY / ".hadolint.yaml"), "--no-color",
                           "--format", "json", str(bad)], capture_output=True, text=True, timeout=60)
    codes = {f["code"] for f in json.loads(done.stdout)}
    assert {"DL3007", "DL3013", "DL3042", "DL3025"} <= codes, codes
    assert done.returncode != 0


def test_containerfile_shape():
    text = CONTAINERFILE.read_text()
    all_ins = instructions(text)
    args = dict(a.split("=", 1) for w, a in all_ins if w == "ARG" and "=" in a)
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), \
        f"base image must be python:3.12 slim pinned by full tag: {base!r}"
    st = stages(text)
    assert len(st) >= 2, "multi-stage build expected"
    for s in st:
        assert s[0][1].split()[0] in ("${PYTHON_IMAGE}", base), f"stage not on the pinned base: {s[0]}"
    builder, runtime = st[0], st[-1]
    assert re.search(r"AS\s+builder", builder[0][1], re.I)
    assert any(w == "RUN" and ("pip wheel" in a or "-m build" in a) for w, a in builder)
    # Runtime: no source copied in, installs only from the builder's wheels, nothing fetched.
    assert not any(w in ("COPY", "ADD") and "--from=builder" not in a for w, a in runtime), \
        "the runtime stage must not copy the source tree"
    installs = [a for w, a in runtime if w == "RUN" and "pip install" in a]
    assert installs and all("--no-index" in a and "from=builder" in a for a in installs), installs
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    users = [a for w, a in runtime if w == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), \
        f"final USER must be a numeric non-root id: {users}"
    assert runtime[-1][0] in ("CMD", "ENTRYPOINT") and [w for w, _ in runtime].index("USER") < len(runtime) - 1
    assert [a for w, a in runtime if w == "EXPOSE"] == ["8000"]
    assert [a for w, a in runtime if w == "STOPSIGNAL"] == ["SIGTERM"]
    entry = json.loads(next(a for w, a in runtime if w == "ENTRYPOINT"))
    cmd = json.loads(next(a for w, a in runtime if w == "CMD"))
    assert entry == ["suno-stems-mcp"]
    argv = entry + cmd
    assert "--hosted" in argv and argv[argv.index("--transport") + 1] == "http"
    assert argv[argv.index("--host") + 1] == "0.0.0.0" and argv[argv.index("--port") + 1] == "8000"
    hc = next(a for w, a in runtime if w == "HEALTHCHECK")
    assert "CMD [" in hc and "python" in hc and "127.0.0.1:8000/healthz" in hc and "curl" not in hc
    # No key or token baked in: neither as ENV/ARG nor as a literal anywhere.
    for w, a in all_ins:
        if w in ("ENV", "ARG", "LABEL"):
            assert "APIFRAME_API_KEY" not in a and "SUNO_STEMS_HTTP_TOKEN" not in a, (w, a)
    assert "afk_" not in text


def healthcheck_argv(port: int) -> list[str]:
    runtime = stages(CONTAINERFILE.read_text())[-1]
    hc = next(a for w, a in runtime if w == "HEALTHCHECK")
    argv = json.loads(hc[hc.index("CMD") + 3:].strip())
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    return [a.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for a in argv]


def test_healthcheck_command_tells_alive_from_not():
    """The HEALTHCHECK's own command, run against a loopback stand-in: 0 on 200, non-zero on 503 and refused."""
    backend = Replica("hc").start()
    try:
        argv = healthcheck_argv(backend.port)
        assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
        backend.alive = False
        assert subprocess.run(argv, capture_output=True, timeout=10).returncode != 0
    finally:
        backend.stop()
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode != 0  # nothing listening


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in IGNOREFILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:] if negate else line
        rx = re.escape(pat.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        rx = rx.replace(r"\*", "[^/]*").replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        rules.append((negate, re.compile(rx)))
    return rules


def ignored(rel: str, rules) -> bool:
    """Docker's rule: a path is excluded if it or a parent matches, the last matching line winning."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        state = None
        for negate, rx in rules:
            if rx.fullmatch(sub):
                state = not negate
        if state:
            return True
    return False


def project_root() -> Path | None:
    for cand in (os.environ.get("SUNO_STEMS_PROJECT_ROOT"), DEPLOY.parent):
        if cand and (Path(cand) / "pyproject.toml").exists() and \
                'name = "suno-stems-mcp"' in (Path(cand) / "pyproject.toml").read_text():
            return Path(cand)
    return None


def test_build_context_keeps_what_the_wheel_needs():
    rules = ignore_rules()
    assert ignored(".git/config", rules) and ignored(".venv/bin/python", rules)
    assert ignored("server/__pycache__/cli.cpython-312.pyc", rules) and ignored(".env", rules)
    root = project_root()
    if root is None:
        pytest.skip("project root not found (deploy/ is not inside the repository): set SUNO_STEMS_PROJECT_ROOT")
    import tomllib
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    needed = ["pyproject.toml"]
    readme = meta["project"].get("readme")
    needed += [readme] if isinstance(readme, str) else []
    needed += meta["tool"]["hatch"]["build"]["targets"]["wheel"].get("packages", [])
    version_path = meta["tool"].get("hatch", {}).get("version", {}).get("path")
    needed += [version_path] if version_path else []
    for rel in needed:
        assert (root / rel).exists(), f"{rel} named by pyproject.toml is missing"
        files = [rel] if (root / rel).is_file() else \
            [str(p.relative_to(root)) for p in (root / rel).rglob("*.py") if "__pycache__" not in p.parts]
        kept = [f for f in files if not ignored(f, rules)]
        assert kept, f"{rel} is excluded from the build context by {IGNOREFILE.name}"


@pytest.mark.build
@pytest.mark.skipif(os.environ.get("SUNO_STEMS_DEPLOY_BUILD") != "1",
                    reason="opt-in (network to PyPI, about a minute): SUNO_STEMS_DEPLOY_BUILD=1")
def test_builder_and_runtime_steps_work_on_the_project(tmp_path):
    """The Containerfile's two RUN steps, without a container engine: wheels from the filtered context, then an
    install from those wheels only (--no-index), then the console script."""
    root = project_root()
    if root is None:
        pytest.skip("project root not found: set SUNO_STEMS_PROJECT_ROOT")
    rules = ignore_rules()
    ctx = tmp_path / "ctx"
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_file() and not ignored(rel, rules):
            (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, ctx / rel)
    env = dict(os.environ, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    for name in ("builder", "runtime"):
        subprocess.run([sys.executable, "-m", "venv", str(tmp_path / name)], check=True, timeout=120)
    wheels = tmp_path / "wheels"
    subprocess.run([str(tmp_path / "builder/bin/pip"), "wheel", "--wheel-dir", str(wheels), str(ctx)],
                   check=True, env=env, timeout=600, capture_output=True)
    own = list(wheels.glob("suno_stems_mcp-*.whl"))
    assert len(own) == 1
    subprocess.run([str(tmp_path / "runtime/bin/pip"), "install", "--no-index", f"--find-links={wheels}",
                    str(own[0])], check=True, env=env, timeout=600, capture_output=True)
    out = subprocess.run([str(tmp_path / "runtime/bin/suno-stems-mcp"), "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("suno-stems-mcp "), out


# =============================================================================================================
# Kubernetes
# =============================================================================================================
def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_all() -> dict[str, dict]:
    docs = {}
    for p in manifest_files():
        for doc in yaml.safe_load_all(p.read_text()):
            if doc:
                assert doc["kind"] not in docs, f"two {doc['kind']} manifests"
                docs[doc["kind"]] = doc
    return docs


@pytest.mark.parametrize("version", [PINNED_K8S, NEWEST_K8S])
def test_kubernetes_validate_strict(version):
    files = [str(p) for p in manifest_files()]
    done = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", version, *files],
                          capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "ERROR" not in out and "WARN" not in out, out
    assert out.count("passed") == len(files), out


def test_kubernetes_validate_is_live(tmp_path):
    """Control: strict mode rejects a misspelt field, so 'passed' above means something."""
    dep = yaml.safe_load((K8S / "deployment.yaml").read_text())
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(dep))
    done = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", PINNED_K8S, str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "paht" in done.stdout + done.stderr


def pod(docs):
    return docs["Deployment"]["spec"]["template"]["spec"]


def server(docs):
    return next(c for c in pod(docs)["containers"] if c["name"] == "server")


def env_of(container) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_probes_point_at_health_and_readiness_on_the_container_port():
    docs = load_all()
    c = server(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}
    args = c["args"]
    assert args[args.index("--port") + 1] == str(ports["http"]) and args[args.index("--host") + 1] == "0.0.0.0"
    assert "--hosted" in args and args[args.index("--transport") + 1] == "http"
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("http", 8000) and ports.get(get["port"], get["port"]) == 8000, probe
        assert get.get("scheme", "HTTP") == "HTTP" and "httpHeaders" not in get  # outside the token
    # The startup probe allows a slow first start; liveness never kills a merely busy pod quickly.
    s, live = c["startupProbe"], c["livenessProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] >= 30
    assert live["periodSeconds"] * live["failureThreshold"] >= 20 and live["timeoutSeconds"] >= 2


def test_grace_period_covers_prestop_max_wait_and_drain():
    docs = load_all()
    spec, c = pod(docs), server(docs)
    grace = spec["terminationGracePeriodSeconds"]
    assert grace >= 60
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[0] == "sleep"
    pre_stop = int(cmd[1])
    assert 5 <= pre_stop <= 30
    max_wait = int(env_of(c)["SUNO_STEMS_MAX_WAIT"]["value"])
    assert grace >= pre_stop + max_wait + 5, (grace, pre_stop, max_wait)


def test_no_apiframe_key_anywhere_and_token_from_secret():
    docs = load_all()
    secret = docs["Secret"]
    for c in pod(docs)["containers"] + pod(docs).get("initContainers", []):
        assert "envFrom" not in c, f"{c['name']}: envFrom could inject anything"
        env = env_of(c)
        assert "APIFRAME_API_KEY" not in env, c["name"]
        for name, e in env.items():
            assert "afk_" not in str(e.get("value", "")), (c["name"], name)
            if "valueFrom" in e:
                assert name == "SUNO_STEMS_HTTP_TOKEN", f"{c['name']}: only the token comes from a secret"
        tok = env["SUNO_STEMS_HTTP_TOKEN"]
        assert "value" not in tok
        ref = tok["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        assert ref.get("optional", False) is False
    for p in manifest_files():
        assert "APIFRAME_API_KEY" not in p.read_text() and "afk_" not in p.read_text(), p.name
    placeholder = secret["stringData"]["token"]
    assert placeholder.startswith("replace-me") and "data" not in secret


def test_init_container_refuses_the_placeholder_token_and_never_prints_it():
    docs = load_all()
    init = next(c for c in pod(docs)["initContainers"] if c["name"] == "check-token")
    assert init["image"] == server(docs)["image"] and init["command"][:2] == ["python", "-c"]
    script = init["command"][2]
    placeholder = docs["Secret"]["stringData"]["token"]
    real = "9f" * 32
    for token, ok in ((placeholder, False), ("short-token", False), ("", False), (real, True)):
        env = {"PATH": os.environ.get("PATH", ""), "SUNO_STEMS_HTTP_TOKEN": token}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30)
        assert (done.returncode == 0) is ok, (token, done)
        if token:
            assert token not in done.stdout + done.stderr


def test_pod_security():
    docs = load_all()
    spec = pod(docs)
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0 and psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    mounts_tmp = False
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], c["name"]
        assert sc.get("privileged", False) is False, c["name"]
        r = c["resources"]
        for kind in ("cpu", "memory"):
            assert kind in r["requests"] and kind in r["limits"], (c["name"], kind)
            assert quantity(r["requests"][kind]) <= quantity(r["limits"][kind]), (c["name"], kind)
        mounts_tmp |= any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", []))
    assert mounts_tmp
    vols = {v["name"]: v for v in spec["volumes"]}
    tmp = next(m for m in server(docs)["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in vols[tmp["name"]]
    # The namespace enforces the restricted Pod Security Standard.
    assert docs["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def quantity(q) -> float:
    s = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for u, f in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(u):
            return float(s[: -len(u)]) * f
    return float(s)


def test_replicas_hpa_service_pdb_fit_together():
    docs = load_all()
    dep, hpa = docs["Deployment"], docs["HorizontalPodAutoscaler"]
    svc, pdb = docs["Service"], docs["PodDisruptionBudget"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # HPA
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", dep["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    metrics = hpa["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    assert 0 < metrics[0]["resource"]["target"]["averageUtilization"] <= 90
    assert hpa["metadata"]["namespace"] == dep["metadata"]["namespace"]
    # Service: ClusterIP, no affinity, selects the pods, reaches the named port.
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"].get("sessionAffinity", "None") == "None" and "sessionAffinityConfig" not in svc["spec"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]
    # PDB keeps all but one through voluntary disruptions.
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1
    # NetworkPolicy selects the same pods and admits the HTTP port.
    np_ = docs["NetworkPolicy"]
    assert np_["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert any(p["port"] == "http" for r in np_["spec"]["ingress"] for p in r["ports"])
    assert all(d["metadata"].get("namespace") == docs["Namespace"]["metadata"]["name"]
               for k, d in docs.items() if k != "Namespace")


def test_kustomization_lists_every_file():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in manifest_files())
    assert kust["namespace"] == load_all()["Namespace"]["metadata"]["name"]
    images = {i["name"] for i in kust.get("images", [])}
    dep = load_all()["Deployment"]["spec"]["template"]["spec"]
    used = {c["image"].rsplit(":", 1)[0] for c in dep["containers"] + dep.get("initContainers", [])}
    assert used <= images, (used, images)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed (optional: `kubectl kustomize`)")
def test_kustomize_build():
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert sorted(d["kind"] for d in built) == sorted(load_all())
    dep = next(d for d in built if d["kind"] == "Deployment")
    images = {c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    img = kust["images"][0]
    assert images == {f"{img['newName']}:{img['newTag']}"}
    # includeSelectors: false - the added labels must not change the (immutable) selector.
    assert "app.kubernetes.io/part-of" not in dep["spec"]["selector"]["matchLabels"]


# =============================================================================================================
# HAProxy (local load balancer)
# =============================================================================================================
class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # HAProxy ends each health check with a TCP reset once it has the status line: not an error here.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Replica:
    """A stand-in replica on 127.0.0.1: /readyz, /healthz, /mcp (answers its name), /sse (two timed events)."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name, self.port = name, port
        self.ready = True
        self.alive = True
        self.post_mode = "ok"  # "ok" | "drop" (read the request, close without answering) | "slow"
        self.slow_seconds = 2.0
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of /mcp and /sse
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> Replica:
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _reply(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> None:
                with replica.lock:
                    replica.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/readyz":
                    self._reply(200 if replica.ready else 503, b"{}")
                elif path == "/healthz":
                    self._reply(200 if replica.alive else 503, b"{}")
                elif path == "/sse":
                    self._record()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    self.wfile.write(b"event: progress\ndata: 1\n\n")
                    self.wfile.flush()
                    time.sleep(1.0)
                    self.wfile.write(b"event: result\ndata: 2\n\n")
                    self.wfile.flush()
                else:
                    self._record()
                    self._reply(200, json.dumps({"replica": replica.name}).encode())

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._record()
                if replica.post_mode == "drop":
                    self.close_connection = True
                    return  # the request reached this replica; no response at all
                if replica.post_mode == "slow":
                    time.sleep(replica.slow_seconds)
                self._reply(200, json.dumps({"replica": replica.name}).encode())

        self.httpd = QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Kill: stop answering and close the listening socket (connections are then refused)."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def count(self, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for m, _, _ in self.seen if method in (None, m))


@pytest.fixture
def replicas():
    rs = [Replica(f"r{i}").start() for i in (1, 2, 3)]
    yield rs
    for r in rs:
        r.stop()


@pytest.fixture
def lb(replicas):
    balancer = local_lb.LocalLoadBalancer([r.port for r in replicas], haproxy=HAPROXY)
    balancer.start(timeout=10)
    try:
        balancer.wait_for_states({"r1": "UP", "r2": "UP", "r3": "UP"}, timeout=10)
        yield balancer
    finally:
        balancer.close()


def ask(conn: http.client.HTTPConnection, method: str = "GET", path: str = "/mcp", headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, (json.loads(data).get("replica") if resp.status == 200 and data else None)


def new_conn(lb) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", lb.listen_port, timeout=10)


@needs_haproxy
def test_haproxy_config_is_valid_and_says_what_it_should(tmp_path):
    balancer = local_lb.LocalLoadBalancer([18001, 18002, 18003], listen_port=18000, haproxy=HAPROXY,
                                          workdir=tmp_path)
    out = balancer.check()
    assert "Configuration file is valid" in out and "WARNING" not in out and "ALERT" not in out, out
    cfg = balancer.config_path.read_text()
    directives = [ln.split("#")[0].strip() for ln in cfg.splitlines() if ln.split("#")[0].strip()]
    words = " ".join(directives)
    assert re.findall(r"server r\d 127\.0\.0\.1:(\d+)", words) == ["18001", "18002", "18003"]
    assert [d for d in directives if d.startswith("bind ")] == ["bind 127.0.0.1:18000"]
    assert "balance roundrobin" in directives and "option http-server-close" in directives
    for sticky in ("cookie", "stick", "balance source", "prefer-last-server", "hash-type", "appsession"):
        assert not any(d.startswith(sticky) or f" {sticky}" in d for d in directives), sticky
    # a 503 is retried too: a replica answers it only without doing anything (draining, or at its cap)
    assert [d for d in directives if d.startswith("retry-on")] == ["retry-on conn-failure 503"]
    assert "option redispatch 1" in directives
    assert "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost" in directives
    for side in ("client", "server"):
        t = next(d for d in directives if d.startswith(f"timeout {side} "))
        assert int(t.split()[-1].rstrip("s")) >= 60, t
    # Logging: nothing that could carry a header, a cookie or a query string.
    assert not any(d.startswith(("capture ", "option httplog", "option tcplog", "http-request capture"))
                   for d in directives)
    fmt = next(d for d in directives if d.startswith("log-format"))
    # Every field must be one of these: addresses, dates, names, timers, status, sizes, counters, method, PATH.
    # (Excluded on purpose: %hr %hs %hrl %hsl captured headers, %CC %CS cookies, %r %HU %HQ with the query
    # string, and %[...] samples, which can read any header.)
    allowed = {"ci", "cp", "tr", "ft", "b", "s", "TR", "Tw", "Tc", "Tr", "Ta", "ST", "B", "tsc", "ac", "fc",
               "bc", "sc", "rc", "sq", "bq", "HM", "HP"}
    fields = re.findall(r"%(?:\{[^}]*\})?(\[|[A-Za-z]+)", fmt)
    assert fields and set(fields) <= allowed, set(fields) - allowed
    assert "compression" not in words and "shutdown-sessions" not in words


@needs_haproxy
def test_round_robin_without_stickiness_and_no_key_in_the_log(lb, replicas):
    key, token = "afk_live_SECRET_KEY_0123456789", "operator-token-SECRET-abcdef"
    conn = new_conn(lb)  # ONE client connection for all: balancing must still go round
    order = []
    try:
        for i in range(30):
            status, who = ask(conn, "POST", f"/mcp?api_key={key}", body=b'{"jsonrpc":"2.0","id":%d}' % i,
                              headers={"X-Apiframe-Key": key, "Authorization": f"Bearer {token}",
                                       "Cookie": f"session={key}", "Content-Type": "application/json"})
            assert status == 200
            order.append(who)
    finally:
        conn.close()
    assert Counter(order) == {"r1": 10, "r2": 10, "r3": 10}, order
    assert all(order[i] != order[i + 1] for i in range(len(order) - 1)), order
    assert all(order[i] == order[i + 3] for i in range(len(order) - 3)), order  # strict rotation
    # The key reached the replicas (it must), and never the log.
    assert all(h.get("x-apiframe-key") == key for r in replicas for _, _, h in r.seen)
    time.sleep(0.3)
    log = lb.log_text()
    assert log.count("POST /mcp") == 30, log[-2000:]
    assert key not in log and token not in log and "api_key" not in log and "Bearer" not in log


@needs_haproxy
def test_killed_replica_is_taken_out_and_put_back(lb, replicas):
    r2 = replicas[1]
    r2.stop()
    # Before the health checks notice: a connection refused is retried on another replica (redispatch).
    conn = new_conn(lb)
    try:
        early = [ask(conn) for _ in range(9)]
    finally:
        conn.close()
    assert all(status == 200 for status, _ in early), early
    assert {who for _, who in early} == {"r1", "r3"}
    states = lb.wait_for_states({"r2": "DOWN", "r1": "UP", "r3": "UP"}, timeout=8)
    assert states["r2"] == "DOWN"
    conn = new_conn(lb)
    try:
        while_down = [ask(conn)[1] for _ in range(10)]
    finally:
        conn.close()
    assert Counter(while_down) == {"r1": 5, "r3": 5}, while_down
    # Back on the same port: put back in rotation after `rise` good checks.
    r2.start()
    lb.wait_for_states({"r1": "UP", "r2": "UP", "r3": "UP"}, timeout=8)
    conn = new_conn(lb)
    try:
        after = [ask(conn)[1] for _ in range(9)]
    finally:
        conn.close()
    assert Counter(after) == {"r1": 3, "r2": 3, "r3": 3}, after
    log = lb.log_text()
    assert re.search(r"Server mcp_replicas/r2 is DOWN", log) and re.search(r"Server mcp_replicas/r2 is UP", log)


@needs_haproxy
def test_a_post_that_reached_a_replica_is_never_retried(lb, replicas):
    for r in replicas:
        r.post_mode = "drop"  # every replica reads the tool call, then dies without answering
    conn = new_conn(lb)
    try:
        status, _ = ask(conn, "POST", "/mcp", body=b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
                        headers={"Content-Type": "application/json"})
    finally:
        conn.close()
    assert status == 502
    assert sum(r.count("POST") for r in replicas) == 1, [r.count("POST") for r in replicas]


@needs_haproxy
def test_a_draining_replica_gets_no_new_requests_and_finishes_its_call(lb, replicas):
    for r in replicas:
        r.post_mode, r.slow_seconds = "slow", 3.0
    result = {}

    def long_call():
        c = new_conn(lb)
        try:
            result["reply"] = ask(c, "POST", "/mcp", body=b"{}", headers={"Content-Type": "application/json"})
        finally:
            c.close()

    t = threading.Thread(target=long_call)
    t.start()
    deadline = time.monotonic() + 2
    while not any(r.count("POST") for r in replicas) and time.monotonic() < deadline:
        time.sleep(0.02)
    busy = next(r for r in replicas if r.count("POST"))
    busy.ready = False  # what the server does on SIGTERM: /readyz answers 503 while in-flight calls go on
    lb.wait_for_states({busy.name: "DOWN"}, timeout=5)
    conn = new_conn(lb)
    try:
        others = [ask(conn)[1] for _ in range(6)]
    finally:
        conn.close()
    assert busy.name not in others and len(set(others)) == 2, others
    t.join(timeout=10)
    assert result.get("reply") == (200, busy.name), result


@needs_haproxy
def test_sse_events_are_streamed_not_buffered(lb):
    conn = new_conn(lb)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/sse", headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
        first = resp.fp.readline() + resp.fp.readline()
        t_first = time.monotonic() - t0
        rest = resp.read()
        t_all = time.monotonic() - t0
    finally:
        conn.close()
    assert b"data: 1" in first and b"data: 2" in rest
    assert t_first < 0.7 and t_all >= 0.9, (t_first, t_all)


def test_render_refuses_bad_input(tmp_path):
    sock = tmp_path / "s.sock"
    with pytest.raises(ValueError):
        local_lb.render([], 8000, sock)
    with pytest.raises(ValueError):
        local_lb.render([8001, 8001], 8000, sock)
    with pytest.raises(ValueError):
        local_lb.render([8001], 8001, sock)
    with pytest.raises(ValueError):
        local_lb.render([70000], 8000, sock)
    text = local_lb.render([8001, 8002], 8000, sock)
    assert "server r1 127.0.0.1:8001" in text and "server r2 127.0.0.1:8002" in text and "$" not in text
