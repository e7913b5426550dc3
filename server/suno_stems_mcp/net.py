"""Small networking pieces shared by the HTTP transport, the sandbox and downloads."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use: the stdio server never needs it
    import uvicorn


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket. OSError (with `strerror`) when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio turns Nagle off only for sockets that do (else ~40 ms per keep-alive request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(app: Any, sock: socket.socket, **overrides: Any) -> uvicorn.Config:
    import uvicorn

    host, port = sock.getsockname()[:2]
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": 1,
        "server_header": False,
    }
    values.update(overrides)
    return uvicorn.Config(app, **values)


class UvicornThread:
    """An ASGI app served by uvicorn from a daemon thread on a loopback port (or on `sock`, a socket already
    listening); `url` is its base URL."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None,
                 **config: Any) -> None:
        self._socket = sock if sock is not None else bind_tcp(host, port)
        host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{self.port}"
        import uvicorn

        self._server = uvicorn.Server(uvicorn_config(app, self._socket, **config))
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
