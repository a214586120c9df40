"""Load a page in real headless Chromium over the DevTools protocol: console, charts, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
# Read in the page once it has loaded: every chart, whether it is empty and how many marks it has.
CHARTS_SCRIPT = """JSON.stringify(Array.from(document.querySelectorAll('figure.chart')).map(f => ({
  key: f.dataset.chart, empty: f.dataset.empty, marks: Number(f.dataset.marks),
  counted: f.querySelectorAll('.mark').length,
})))"""


@dataclass
class PageVisit:
    """What the browser saw: console errors, uncaught exceptions, requests, charts."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    ready: bool = False


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if not path:
        raise RuntimeError("chromium is not installed: run `make ensure-chromium` (Debian package)")
    return path


class _DevTools:
    """A DevTools websocket session attached to one page target."""

    def __init__(self, socket, visit: PageVisit) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.visit = visit
        self.session = None
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 20, **params) -> dict:
        message_id = next(self.ids)
        message = {"id": message_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def wait_for(self, event: str, timeout: float = 20) -> None:
        if any(seen.get("method") == event for seen in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self._record(reply)
            if reply.get("method") == event:
                return
        raise TimeoutError(f"no {event} within {timeout} s")

    def _record(self, event: dict) -> None:
        self.events.append(event)
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            self.visit.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            description = details.get("exception", {}).get("description", details.get("text"))
            self.visit.errors.append(f"uncaught: {description}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.visit.errors.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            self.visit.requests.append(params["request"]["url"])


def _devtools_url(process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
        if not line and process.poll() is not None:
            break
    raise RuntimeError("chromium did not start its DevTools endpoint")


def visit_page(url: str, screenshot: Path, width: int = 1280, height: int = 900) -> PageVisit:
    """Open `url` in a fresh headless Chromium, read console and charts, save a full-page PNG."""
    visit = PageVisit()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    process = subprocess.Popen(
        [chromium_executable(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        socket_url = _devtools_url(process)
        with connect(socket_url, max_size=64 * 1024 * 1024, open_timeout=10) as socket:
            _drive(_DevTools(socket, visit), url, screenshot, width, height)
    finally:
        _stop(process)
        _remove_profile(profile)
    return visit


def _stop(process: subprocess.Popen) -> None:
    """Stop Chromium, then kill whatever of its process group (helpers) is still running."""
    for signal_number, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def _remove_profile(profile: str) -> None:
    """Remove the profile directory; a helper process that outlived the browser for a moment
    may still write into it (seen as 'Directory not empty'), so try again briefly."""
    for _ in range(20):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.25)
    shutil.rmtree(profile)


def _drive(tools: _DevTools, url: str, screenshot: Path, width: int, height: int) -> None:
    """Attach to a new page, load `url`, read its state and take a full-page screenshot."""
    visit = tools.visit
    target = tools.call("Target.createTarget", url="about:blank")["targetId"]
    tools.session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired")
    result = tools.call(
        "Runtime.evaluate",
        expression=f"[document.body.dataset.ready === 'true', {CHARTS_SCRIPT}]",
        returnByValue=True,
    )["result"]["value"]
    visit.ready, visit.charts = result[0], json.loads(result[1])
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
