"""Screenshots of the documentation site as a reader sees it, with headless Chromium.

Builds the site (``mkdocs build`` into a temporary directory), serves it on 127.0.0.1 with
``http.server`` in a thread (a free port; nothing listens beyond this machine), and takes a
full-page screenshot of the home page, the API reference and the benchmarks page::

    python tools/screenshots.py DIR                  # DIR/home.png, reference.png, benchmarks.png
    python tools/screenshots.py DIR --page keys/     # other pages, by their path in the site
    python tools/screenshots.py DIR --width 1280 --height 2400

Look at the pictures before closing a documentation change: a code line cut off, a chart too
small to read or a reference that renders as raw text shows there and nowhere else. The
screenshots are not committed.

Needs Chromium (on Debian: ``apt-get install -y chromium``; ``--chromium PATH`` or
``$CHROMIUM`` for another binary) and the docs dependencies (``pip install -e ".[test]"``).
It exits 2, saying so, when Chromium is missing. The window is 1,280 px wide (Material shows
its navigation sidebars and a content column of about 690 px) and 2,400 px tall; Chromium's
``--screenshot`` captures that window, so a longer page is cut at the bottom: raise
``--height`` to see more of it.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"home": "", "reference": "reference/", "benchmarks": "benchmarks/"}
"""Screenshot name → path of the page in the site."""
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_chromium(given: str | None) -> str | None:
    """The Chromium binary: ``given``, ``$CHROMIUM``, or one on the PATH."""
    for candidate in (given, os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def build_site(out: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--no-strict", "-d",
                             str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"mkdocs build failed:\n{result.stderr}{result.stdout}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def screenshot(chromium: str, url: str, target: Path, *, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="memo-replay-chromium-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", f"--screenshot={target}", url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not target.is_file():
        raise SystemExit(f"chromium failed on {url}:\n{result.stderr[-2000:]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the documentation site "
                                                 "(home, API reference, benchmarks).")
    parser.add_argument("directory", type=Path, help="where to write the PNG files")
    parser.add_argument("--page", action="append", metavar="PATH",
                        help="a page's path in the site, e.g. keys/ (repeatable; default: "
                             "the home page, the API reference and the benchmarks page)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--chromium", help="the Chromium binary (default: $CHROMIUM or "
                                           "chromium on the PATH)")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("screenshots: Chromium is not installed (looked for $CHROMIUM, chromium, "
              "chromium-browser, google-chrome). On Debian: apt-get install -y chromium",
              file=sys.stderr)
        return 2
    pages = ({p.strip("/").replace("/", "-") or "home": p for p in args.page} if args.page
             else PAGES)
    args.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memo-replay-site-") as site:
        build_site(Path(site))
        with serve(Path(site)) as base:
            for name, path in pages.items():
                target = (args.directory / f"{name}.png").resolve()
                screenshot(chromium, base + path.lstrip("/"), target, width=args.width,
                           height=args.height)
                print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
