"""The corpus through changedetection.io (run with a Python that has ``changedetection-io``).

    <venv>/bin/python bench/_competitive_cdio.py --base http://127.0.0.1:PORT --corpus DIR

For each page of each case: the first check reads the page's first load, the second check
its next version, each through changedetection.io's own ``html_to_text`` and the MD5 of the
text it compares, with the application default ``ignore_whitespace`` (True) and no filters,
ignore rules or triggers (a new watch's defaults). A case is flagged when any of its pages
changed. Prints one JSON line: false alerts on noise-only pages, recall on labelled cases,
seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import urllib.request
from importlib import metadata
from pathlib import Path

from changedetectionio import html_tools
from changedetectionio.html_tools import TRANSLATE_WHITESPACE_TABLE


def checksum(html: str) -> str:
    text = html_tools.html_to_text(html_content=html, render_anchor_tag_content=False)
    return hashlib.md5(text.translate(TRANSLATE_WHITESPACE_TABLE).encode("utf-8")).hexdigest()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.read().decode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--corpus", required=True)
    args = ap.parse_args()
    manifest = json.loads((Path(args.corpus) / "manifest.json").read_text())
    noise_pages = noise_alerts = labelled = flagged = 0
    started = time.perf_counter()
    for case in manifest:
        changed_pages = 0
        for page in case["pages"]:
            first = checksum(get(f"{args.base}/raw/{case['case']}/{page}.before.html"))
            second = checksum(get(f"{args.base}/raw/{case['case']}/{page}.after.html"))
            changed_pages += first != second
        if case["expected"]:
            labelled += 1
            flagged += changed_pages > 0
        else:
            noise_pages += len(case["pages"])
            noise_alerts += changed_pages
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "noise_pages": noise_pages,
                "noise_alerts": noise_alerts,
                "false_alerts_per_100_noise_pages": 100 * noise_alerts / max(1, noise_pages),
                "recall": flagged / max(1, labelled),
                "seconds": seconds,
                "version": metadata.version("changedetection-io"),
            }
        )
    )


if __name__ == "__main__":
    main()
