"""The GPU benchmarks in one go: the CAM engine and an 8192² scene with `--device cuda`.

1. `bench_cam.py --device cuda`: every method at every layer resolution of `workload.CASES`
   against the bare passes on the same GPU, channels-last, tiles copied from pinned host memory
   with non-blocking copies inside every timed call, a larger batch than on the CPU;
   → `results/cam_cuda.{md,json}`;
2. the same with the forwards under bfloat16 autocast (the CAM arithmetic stays float32)
   → `results/cam_cuda_bf16.{md,json}`;
3. `bench_scene.py --device cuda --sizes 8192`: the scene pipeline against its bare model passes
   on the GPU, the prescreen pair and box accuracy → `results/scene_cuda.{md,json}`.

Each step runs in a process of its own, so one failing does not hide the others' results; the
exit status is non-zero if any failed. Without a CUDA device it prints one line and exits 0.

    python bench/bench_gpu.py --out bench          # make bench-gpu
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
GPU_BATCH = 256  # tiles per call in the engine benchmark (the CPU runs 64 or 32)


def steps(out: Path, quick: bool) -> list[tuple[str, list[str]]]:
    cam = [str(HERE / "bench_cam.py"), "--device", "cuda", "--out", str(out)]
    if quick:
        cam += ["--quick"]
    else:
        cam += ["--batch", str(GPU_BATCH)]
    scene = [str(HERE / "bench_scene.py"), "--device", "cuda", "--out", str(out)]
    scene += ["--quick"] if quick else ["--sizes", "8192"]
    return [
        ("CAM engine, float32", cam),
        ("CAM engine, bf16 autocast forwards", [*cam, "--autocast", "bf16", "--suffix", "_bf16"]),
        ("scene pipeline", scene),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="writes OUT/results/")
    parser.add_argument("--quick", action="store_true", help="small smoke runs")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench-gpu: torch sees no CUDA device here; nothing to run (exit 0).")
        return 0
    print(f"bench-gpu: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    failed = []
    for title, command in steps(args.out, args.quick):
        print(f"\n=== {title}: {' '.join(command)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *command], check=False)
        print(f"=== {title}: exit {done.returncode} after {time.perf_counter() - start:.0f} s")
        if done.returncode:
            failed.append(title)
    if failed:
        print(f"bench-gpu: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
