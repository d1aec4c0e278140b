"""Headless Chromium: load a report from disk, get its DOM and console output, or a screenshot.

Used by tests/test_dashboard.py and to take the README's picture:

    python -m dashboards.browser REPORT.html docs/report.png [WIDTHxHEIGHT]

Chromium runs with a throw-away profile, background networking off and a proxy that
goes nowhere; its net log records every request the page itself makes (an offline
report makes none). `--virtual-time-budget` lets timers and promises (plotly draws in
one) settle before the DOM is dumped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-extensions",
    "--mute-audio",
    "--proxy-server=http://127.0.0.1:9",
)
# Chromium logs every console message of the page as `...:INFO:CONSOLE:<line>] "<text>", source:
# ...` (the level is not kept), and uncaught exceptions as "Uncaught ...".
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)$")


def find_chromium() -> str | None:
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    dom: str  # the DOM after scripts ran
    console: list[str]  # every console message and uncaught error, in order
    requests: list[str]  # URLs the page asked the network for (file:, data:, blob: excluded)


def _run(args: list[str], timeout: float, profile: str) -> subprocess.CompletedProcess:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "chromium: expected a Chromium binary on PATH (Debian: apt-get install chromium)"
        )
    return subprocess.run(
        [chromium, *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _page_requests(net_log: Path) -> list[str]:
    """URLs requested by the page. Chromium's own background requests have no origin."""
    if not net_log.exists():  # never pass silently: no log would mean no check
        raise RuntimeError(f"chromium: expected a net log at {net_log}, got none")
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        url = params.get("url")  # only the event that opens the job carries it
        if event["type"] != start or url is None or params.get("initiator") == "not an origin":
            continue
        if not url.startswith(("file:", "data:", "blob:")):
            urls.append(url)
    return urls


def load(html_path, budget_ms: int = 5000, timeout: float = 60) -> PageLoad:
    """Open a local HTML file: its rendered DOM, console messages and network requests."""
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="rsearch-chromium-") as tmp:
        net_log = Path(tmp) / "net.json"
        done = _run(
            [
                "--enable-logging=stderr",
                "--v=0",
                f"--log-net-log={net_log}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            timeout,
            f"{tmp}/profile",
        )
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(
                f"chromium: expected a DOM dump of {url}, got exit {done.returncode}: "
                f"{done.stderr.strip().splitlines()[-1:]}"
            )
        requests = _page_requests(net_log)
    console = [
        match.group(1) for line in done.stderr.splitlines() if (match := _CONSOLE.search(line))
    ]
    return PageLoad(dom=done.stdout, console=console, requests=requests)


def screenshot(
    html_path,
    png_path,
    size: tuple[int, int] = (1200, 1600),
    budget_ms: int = 5000,
    timeout: float = 60,
) -> Path:
    """Save a PNG of the page's top `size` pixels."""
    url = Path(html_path).resolve().as_uri()
    out = Path(png_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rsearch-chromium-") as profile:
        done = _run(
            [
                f"--screenshot={out}",
                f"--window-size={size[0]},{size[1]}",
                f"--virtual-time-budget={budget_ms}",
                url,
            ],
            timeout,
            profile,
        )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium: expected a screenshot at {out}, got exit {done.returncode}")
    return out


def shrink_png(png_path, colours: int = 128) -> None:
    """Re-encode a screenshot with a palette (charts have few colours): a fraction of the size."""
    from PIL import Image  # Pillow comes with torchvision; only needed for the README picture

    path = Path(png_path)
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(
            colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    tmp = path.with_suffix(".tmp.png")
    small.save(tmp, optimize=True)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(
            "usage: python -m dashboards.browser REPORT.html OUT.png [WIDTHxHEIGHT]",
            file=sys.stderr,
        )
        return 2
    size = tuple(int(v) for v in argv[2].split("x")) if len(argv) == 3 else (1200, 1600)
    out = screenshot(argv[0], argv[1], size=size)
    shrink_png(out)
    print(f"{out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
