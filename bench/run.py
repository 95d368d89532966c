"""``make bench``: run every benchmark under bench/ and put their figures in one table.

Each script runs in a process of its own (its own database and settings) and leaves
``bench/results/<script>.json``; this collects them into ``bench/results/latest.json``
and ``bench/results/latest.md`` (figure, value, baseline, ratio, target, and the commit
each script last ran on; both files are committed) and prints the table. A script that
fails is reported (its last good figures stay) and the others still run; the exit status
is non-zero if any failed. ``--only`` re-runs some scripts and keeps the others' figures;
``--quick`` passes through (smoke sizes).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import RESULTS, commit, scripts  # noqa: E402


def _row(script: str, commit: str, figure: dict) -> str:
    value = f"{figure['value']:.3f} {figure['unit']}"
    baseline = (
        f"{figure['baseline_name']}: {figure['baseline_value']:.3f} {figure['unit']}"
        if figure.get("baseline_value") is not None
        else ""
    )
    ratio = f"{figure['ratio']:.2f}" if figure.get("ratio") is not None else ""
    target = figure.get("target") or ""
    if target:
        target += " ✔" if figure.get("met") else " ✘"
    return f"| {script} | {commit} | {figure['name']} | {value} | {baseline} | {ratio} | {target} |"


def render(latest: dict) -> str:
    """The Markdown table of ``latest.json``: every script's figures, with the commit each
    script last ran on (``--only`` keeps the others' figures and commits)."""
    lines = [
        f"Benchmarks, last run at commit {latest['commit']}"
        f"{' (quick)' if latest.get('quick') else ''}",
        "",
        "| script | commit | figure | value | baseline | ratio | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for script, outcome in latest["results"].items():
        if "error" in outcome:
            lines.append(f"| {script} | | FAILED ({outcome['error']}) | | | | |")
        lines += [
            _row(script, outcome.get("commit", ""), figure) for figure in outcome.get("figures", [])
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--quick", action="store_true")
    arguments.add_argument("--only", nargs="*", help="run only these scripts")
    options = arguments.parse_args()
    chosen = options.only or scripts()
    outcomes: dict[str, dict] = {}
    previous = RESULTS / "latest.json"
    if options.only and previous.exists():  # re-running some: keep the others' figures
        outcomes = json.loads(previous.read_text()).get("results", {})
    for script in chosen:
        print(f"\n=== {script}{' --quick' if options.quick else ''}", flush=True)
        started = time.perf_counter()
        command = [sys.executable, str(ROOT / "bench" / f"{script}.py")]
        completed = subprocess.run(
            command + (["--quick"] if options.quick else []),
            cwd=ROOT,
            env={**os.environ},
            check=False,
        )
        seconds = time.perf_counter() - started
        result_file = RESULTS / f"{script}.json"
        if completed.returncode == 0 and result_file.exists():
            outcomes[script] = {**json.loads(result_file.read_text()), "seconds": seconds}
        else:
            # Reported as failed; the figures of its last good run stay, with their commit.
            last_good = {k: v for k, v in outcomes.get(script, {}).items() if k != "error"}
            outcomes[script] = {
                **last_good,
                "error": f"exit status {completed.returncode}",
                "seconds": seconds,
            }

    outcomes = dict(sorted(outcomes.items()))
    latest = {"commit": commit(), "quick": options.quick, "results": outcomes}
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")
    table = render(latest)
    (RESULTS / "latest.md").write_text(table)
    print("\n" + table)
    return 1 if any("error" in outcome for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
