"""`make bench`: every benchmark script in this folder, one after another (not a test).

Each prints its own table; speed targets live here, never in the test suite. Every
``bench_*.py`` here runs (``benchmarks/run.py bench_cost`` runs only the named ones):
bench_cost (dry-run cost estimates against the stored smoke records' durations, JSON only,
~1 s), bench_eval, bench_methods, bench_pipeline.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    only = sys.argv[1:]
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem not in only:
            continue
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
