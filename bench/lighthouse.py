"""Lighthouse 12 (mobile: a phone on a slow 4G network, simulated) on the catalogue, a project
page and a hall, in Chinese and English, against a running fair; prints each page's
performance, accessibility and best-practices scores against the targets, and the audits that
cost points.

    make run    # in another terminal
    .venv/bin/python bench/lighthouse.py [--base http://127.0.0.1:5000] \
        [--pages /catalogue /projects/1 /halls/1] [--runs 1]

Lighthouse comes from npm (package.json pins 12.2.3) and drives Debian's Chromium with the
flags this network needs. With --runs above 1 a page's median score is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync"
)
TARGETS = {"performance": 90, "accessibility": 100, "best-practices": 95}


def audit(url: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                str(LIGHTHOUSE),
                url,
                "--chrome-path=/usr/bin/chromium",
                f"--chrome-flags={CHROME_FLAGS}",
                "--only-categories=" + ",".join(TARGETS),
                "--output=json",
                f"--output-path={report}",
                "--quiet",
            ],
            check=True,
        )
        return json.loads(report.read_text())


def score(report: dict, category: str) -> int:
    return round(report["categories"][category]["score"] * 100)


def losses(report: dict) -> list[str]:
    """The weighted audits that scored below full marks, as `category audit score value`."""
    lines = []
    for name, category in report["categories"].items():
        for ref in category["auditRefs"]:
            result = report["audits"][ref["id"]]
            if ref.get("weight") and result.get("score") is not None and result["score"] < 1:
                shown = result.get("displayValue", "")
                lines.append(f"{name} {ref['id']} {result['score']:.2f} {shown}".rstrip())
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:5000")
    parser.add_argument("--pages", nargs="+", default=["/catalogue", "/projects/1", "/halls/1"])
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    if not LIGHTHOUSE.exists():
        raise SystemExit("Lighthouse is missing: run `npm ci` (or `make install-dev`) first.")
    missed = 0
    for page in options.pages:
        for lang in ("zh", "en"):
            url = f"{options.base}{page}{'&' if '?' in page else '?'}lang={lang}"
            reports = [audit(url) for _ in range(options.runs)]
            scores = {
                name: statistics.median([score(r, name) for r in reports]) for name in TARGETS
            }
            verdicts = []
            for name, target in TARGETS.items():
                met = scores[name] >= target
                missed += not met
                verdicts.append(f"{name} {scores[name]:g} ({'met' if met else 'MISSED'} ≥{target})")
            print(f"{page} [{lang}]: " + ", ".join(verdicts))
            for line in losses(reports[-1]):
                print(f"    {line}")
    print("All targets met." if not missed else f"{missed} targets missed.")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
