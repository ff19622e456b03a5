"""How the training step and the metrics slow down when other processes share the CPU.

    python benchmarks/contention.py [--busy 0 1 2] [--policies default PASSIVE SPIN=10000] [--output FILE]

For each OpenMP wait policy and each number of busy neighbours (processes doing 2-thread fp32
matmuls, like another training), one fresh process times (a) the `quick` Shapes training step
(`tagger bench --preset quick --steps 10 --repeats 2`) and (b) AMI of 10,000 TextureMNIST-like
examples (benchmarks/bench_metrics.py), both with the thread count tagger uses. The wait policy
is set through ``OMP_WAIT_POLICY`` before the process starts ("default" leaves it unset, so
``import tagger`` sets ``GOMP_SPINCOUNT=1000`` in both processes; "SPIN=N" sets libgomp's
``GOMP_SPINCOUNT``, the spins before a waiting thread sleeps: SPIN=300000 is libgomp's own default). The
slowdown is the time over the same policy's idle time; with two cores, losing a fair share to
one neighbour is ~1.5-2x, to two ~2-3x.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "import torch; torch.set_num_threads(2); a = torch.randn(1024, 1024)\nwhile True: a @ a"


def timed(policy: str) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy.startswith("SPIN="):  # libgomp's spin count before a waiting thread sleeps
        env["GOMP_SPINCOUNT"] = policy[5:]
    elif policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "bench.json"
        subprocess.run([sys.executable, "-m", "tagger", "bench", "--preset", "quick", "--device", "cpu", "--steps", "10",
                        "--repeats", "2", "--output", str(output)], capture_output=True, env=env, cwd=ROOT, check=True)
        step_ms = json.loads(output.read_text())["ms_per_step"]
    metrics = subprocess.run([sys.executable, "benchmarks/bench_metrics.py", "--n", "10000", "--n-sklearn", "20"],
                             capture_output=True, text=True, env=env, cwd=ROOT)
    ami_s = [float(s) for s in re.findall(r"ami\s+10000 examples\s+([\d.]+) s", metrics.stdout)]
    return {"step_ms": step_ms, "ami_texture_s": ami_s[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=["default", "PASSIVE"])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows = []
    for busy in args.busy:
        neighbours = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
        time.sleep(2 if busy else 0)
        try:
            for policy in args.policies:  # interleaved within one contention level
                rows.append({"busy": busy, "policy": policy, **timed(policy)})
                print(rows[-1], flush=True)
        finally:
            for process in neighbours:
                process.kill()
                process.wait()
    idle = {row["policy"]: row for row in rows if row["busy"] == 0}
    print("\n| OMP_WAIT_POLICY | busy neighbours | step ms | slowdown | AMI 10k s | slowdown |\n|---|---|---|---|---|---|")
    for row in rows:
        base = idle.get(row["policy"])
        ratio = (lambda key: f"{row[key] / base[key]:.1f}x") if base else (lambda key: "")
        print(f"| {row['policy']} | {row['busy']} | {row['step_ms']:.1f} | {ratio('step_ms')} | "
              f"{row['ami_texture_s']:.2f} | {ratio('ami_texture_s')} |")
    if args.output:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
