"""The reference network served by a Python process of its own, so that it never competes with the harness for one
interpreter's lock: what `run` (as BAP, without a target), `probe` and `sandbox` start.

In the harness's process, the network's signing, verifying, validating and HTTP work and the harness's own share
one GIL: at `-n 64` the network could not deliver a gateway's fan-out inside the harness's collection window, and
the harness failed scenarios the network had in fact served right. In a process of its own it has a core of its
own.

The parent binds the listening socket first (so the URLs are known and connections queue from the start) and
hands it to the child, with the NetworkConfig, over the child's standard input; the child answers on its standard
output with one JSON line: the endpoints once it serves, or the configuration error that stops it. Later commands
(a subscriber to register) go the same way, one answer each. The child stops when its standard input closes, which
is also what happens when the parent dies, however it dies: a network never outlives the harness that started it.

The in-thread `Network` stays for the harness's own tests, which reach into the participants (a BAP's inbox, a
BPP's orders) and patch them; nothing else needs that.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from conformance.errors import ConfigError
from conformance.network.registry import Subscriber
from conformance.network.sandbox import HALT_TIMEOUT, Addresses, Endpoint, MountableNetwork, NetworkConfig
from conformance.transport import SHUTDOWN_GRACE, bind, url_of, uvicorn_server

START_TIMEOUT = 60.0
"""Seconds the child may take to import the harness, load the catalogs and serve: seconds at most, even on a busy
machine; past it the start fails (a harness error, not a verdict)."""
ANSWER_TIMEOUT = 10.0
"""Seconds the child may take to answer a command (it only adds a registry entry)."""
STOP_TIMEOUT = HALT_TIMEOUT + SHUTDOWN_GRACE + 3
"""Seconds a stopping child may take to drop its work and release its port, before it is killed."""


class NetworkProcess(Addresses):
    """The reference network on a loopback port of its own, served by a child process. Stop it with `stop()` or use
    it as a context manager; a stopped network cannot be started again. Its participants live in the child: this
    side knows where they are (`endpoints()`, `bpp_urls`) and can register subscribers (`add_subscriber`)."""

    def __init__(self, config: NetworkConfig) -> None:
        self._sock = bind(config.host, config.port)
        try:
            super().__init__(config, public_url=url_of(self._sock))
        except BaseException:
            self._sock.close()
            raise
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoints: list[Endpoint] = []
        self.stopped = False

    def start(self) -> "NetworkProcess":
        """Start the child; returns once it serves. A ConfigError when the configuration is refused (bad faults,
        catalogs), a RuntimeError when the child does not start."""
        if self.stopped:
            raise RuntimeError("this reference network has been stopped; start a new one instead")
        if self._process is not None:
            return self
        fd = self._sock.fileno()
        try:
            self._process = subprocess.Popen([sys.executable, "-c", _CHILD, str(Path(__file__).resolve().parents[2])],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(fd,),
                                             start_new_session=True)  # Ctrl-C reaches the harness, which stops it
            self._sock.close()  # the child holds the port now
            self._send((self.config, self.base_url, fd))
            answer = self._answer(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        if "error" in answer:
            self.stop()
            raise ConfigError(str(answer["error"]))
        self._endpoints = [Endpoint(**e) for e in answer["ready"]]
        return self

    def endpoints(self) -> list[Endpoint]:
        """Who is on the network, where, with which public key (as MountableNetwork.endpoints)."""
        return list(self._endpoints)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (a benchmark reads its CPU time)."""
        return self._process.pid if self._process is not None else None

    @property
    def bpp_urls(self) -> dict[str, str]:
        """Each BPP's URL, by name, in the configuration's order."""
        return {e.name: e.url for e in self._endpoints if e.role == "BPP"}

    def add_subscriber(self, subscriber: Subscriber) -> None:
        """Register someone else in the network's registry (the harness's own key); returns once it is there."""
        if self._process is None or self.stopped:
            raise RuntimeError("the reference network is not running")
        self._send(("subscribe", subscriber))
        self._answer(ANSWER_TIMEOUT)

    def stop(self) -> None:
        """Stop the child, quietly (it drops what is under way, as Network.stop does) and within STOP_TIMEOUT
        seconds, killing it past them; the port is released."""
        self.stopped = True
        process, self._process = self._process, None
        self._sock.close()
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "NetworkProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, value: Any) -> None:
        assert self._process is not None and self._process.stdin is not None
        pickle.dump(value, self._process.stdin)
        self._process.stdin.flush()

    def _answer(self, timeout: float) -> dict[str, Any]:
        """The child's next line, within `timeout` seconds; a RuntimeError when it ends or says nothing."""
        assert self._process is not None and self._process.stdout is not None
        out = self._process.stdout
        deadline = time.monotonic() + timeout
        while not select.select([out], [], [], max(0.0, min(0.2, deadline - time.monotonic())))[0]:
            if self._process.poll() is not None:
                raise RuntimeError(f"the reference network's process ended (exit code {self._process.returncode}); "
                                   "its error is above")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the reference network's process did not answer within {timeout:g} s")
        line = out.readline()
        if not line:
            raise RuntimeError(f"the reference network's process ended (exit code {self._process.wait()}); its error "
                               "is above")
        answer: dict[str, Any] = json.loads(line)
        return answer


_CHILD = "import sys; sys.path.append(sys.argv[1]); from conformance.network.process import child; sys.exit(child())"
"""The child's program. The folder the parent's `conformance` came from goes last on its path: the child finds the
harness as the parent did (installed, or the checkout it runs in), and from that folder when it was found nowhere
else (a script that put it on its own path); never before the standard library, as PYTHONPATH would put it."""


def _say(out: IO[str], **answer: Any) -> None:
    out.write(json.dumps(answer) + "\n")
    out.flush()


def _next_command(stdin: IO[bytes]) -> Any:
    """The next command from the parent, or None once it closed our standard input (stopping, or gone)."""
    try:
        return pickle.load(stdin)
    except (EOFError, OSError, pickle.UnpicklingError):
        return None


async def _serve(net: MountableNetwork, sock: socket.socket, stdin: IO[bytes], out: IO[str]) -> int:
    server = uvicorn_server(net.app())
    serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            _say(out, error="the reference network did not start: its error is above")
            return 5
        await asyncio.sleep(0.005)
    _say(out, ready=[dataclasses.asdict(e) for e in net.endpoints()])
    while (command := await asyncio.to_thread(_next_command, stdin)) is not None:
        kind, value = command
        if kind == "subscribe":
            net.add_subscriber(value)
        _say(out, done=kind)
    await net.halt()  # quietly: what is under way is dropped, later requests get 503
    server.should_exit = True
    await serving
    return 0


def child() -> int:
    """The child's side: read the configuration and the socket, serve until standard input closes."""
    stdin = sys.stdin.buffer
    config, public_url, fd = _next_command(stdin)
    sock = socket.socket(fileno=fd)
    try:
        net = MountableNetwork(config, public_url=public_url)
    except ConfigError as exc:
        _say(sys.stdout, error=str(exc))
        return 2
    return asyncio.run(_serve(net, sock, stdin, sys.stdout))
