"""Headless Chromium driven over the DevTools protocol, for the viewer's browser tests (real time, real websocket)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader",
    "--window-size=900,600", "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)  # fmt: skip


def fake_microphone_flags(wav: Path) -> tuple[str, ...]:
    """Chromium's fake microphone playing ``wav`` (looped), with the permission granted."""
    return (
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    )  # fmt: skip


class DevTools:
    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self._ws = connect(ws_url, max_size=None)
        self._id = 0

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=30.0))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-able values)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def close(self) -> None:
        self._ws.close()


class Chromium:
    """A headless Chromium with its own profile; :meth:`page` opens a tab at a URL."""

    def __init__(self, profile: Path, extra_flags: tuple[str, ...] = ()):
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.perf_counter() + 30
        while not port_file.is_file() or len(port_file.read_text().split()) < 2:
            assert self.process.poll() is None, "chromium exited at start"
            assert time.perf_counter() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        self.port = port_file.read_text().split()[0]
        self._pages: list[DevTools] = []

    def _targets(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as response:
            return [t for t in json.load(response) if t["type"] == "page"]

    def page(self, url: str) -> DevTools:
        if not self._pages:
            target = self._targets()[0]
        else:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
            with urllib.request.urlopen(request, timeout=10) as response:
                target = json.load(response)
        page = DevTools(target["webSocketDebuggerUrl"])
        self._pages.append(page)
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        return page

    def close(self) -> None:
        for page in self._pages:
            page.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def wait_until(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.perf_counter() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.perf_counter() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(step)
