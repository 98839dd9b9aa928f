"""What every benchmark here shares: the model, the batch, the timer and the record of the machine.

Used by `bench_cam.py` (the engine against a bare forward and forward+backward) and by
`parity_public.py` (the engine against the public CAM libraries), so that both time the same
workload the same way; `bench_scene.py` shares the machine record and the result files.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any

import torch
from mscam.models import build_architecture
from torch import nn

ARCHITECTURE = "resnet18-sar"
TARGET_LAYER = "layer4"
IN_CHANNELS = 2
NUM_CLASSES = 4


def build_model(width: int = 64, seed: int = 0, device: str = "cpu") -> nn.Module:
    """The mid-size CNN of the benchmarks: mscam's ResNet-18 for SAR chips, seeded, in eval mode.

    Its weights are random (He initialisation): timings and formula parity do not depend on
    training. Its parameters require gradients, as a model fresh from training does.
    """
    torch.manual_seed(seed)
    model = build_architecture(
        ARCHITECTURE, in_channels=IN_CHANNELS, num_classes=NUM_CLASSES, width=width
    )
    return model.to(device).eval()


def plain_cnn(seed: int = 0, device: str = "cpu") -> nn.Module:
    """The plain 4-block CNN of issue 13: 2→32→64→128→128 channels, 3×3 convolutions and ReLUs,
    2×2 max-pooling after the first two blocks, global average pooling and a linear layer.

    On 128 px tiles its last ReLU (`features.9`) gives a 32×32 map with 128 channels.
    """
    torch.manual_seed(seed)
    return _conv_net([32, "M", 64, "M", 128, 128], device)


def vgg_like(seed: int = 0, device: str = "cpu") -> nn.Module:
    """A slim VGG: 32, M, 64, M, 128, 128, M, 256, 512 (3×3 convolutions with ReLU, 2×2
    max-pooling), global average pooling and a linear layer. On 112 px tiles its last ReLU
    (`features.14`) is a VGG `conv5`-like 14×14 map with 512 channels, the layer the
    Self-Matching CAM paper explains."""
    torch.manual_seed(seed)
    return _conv_net([32, "M", 64, "M", 128, 128, "M", 256, 512], device)


def _conv_net(plan: list[int | str], device: str) -> nn.Module:
    layers: list[nn.Module] = []
    channels = IN_CHANNELS
    for step in plan:
        if step == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, int(step), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(step)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*layers))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("classifier", nn.Linear(channels, NUM_CLASSES))
    return model.to(device).eval()


@dataclass(frozen=True)
class Case:
    """One benchmark workload: a model, its target layer, and a batch of tiles."""

    name: str
    model: str  # "resnet18-sar", "plain-cnn" or "vgg-like"
    target_layer: str
    batch: int
    size: int
    score_batch: int  # Score-CAM's tiles (it runs K extra forwards per tile)
    width: int = 64  # resnet18-sar's base width

    def build(self, device: str = "cpu") -> nn.Module:
        if self.model == "plain-cnn":
            return plain_cnn(device=device)
        if self.model == "vgg-like":
            return vgg_like(device=device)
        return build_model(self.width, device=device)


# The layer resolutions on record: ResNet-18's layer4 (8×8) and layer3 (16×16) on 128 px tiles,
# issue 13's plain CNN at 32×32, and a VGG conv5-like 14×14 layer on 112 px tiles.
CASES = (
    Case("resnet18-sar layer4 (8×8×512)", ARCHITECTURE, TARGET_LAYER, 64, 128, 4),
    Case("resnet18-sar layer3 (16×16×256)", ARCHITECTURE, "layer3", 64, 128, 4),
    Case("plain CNN (32×32×128)", "plain-cnn", "features.9", 64, 128, 4),
    Case("VGG-like conv5 (14×14×512)", "vgg-like", "features.14", 32, 112, 2),
)
QUICK_CASES = (
    Case("resnet18-sar layer4, width 8", ARCHITECTURE, TARGET_LAYER, 4, 64, 2, width=8),
    Case("plain CNN (16×16×128)", "plain-cnn", "features.9", 4, 64, 2),
)


def make_batch(
    batch: int, size: int, seed: int = 1, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` two-channel `size`×`size` tiles in [0, 1) and one target class per tile."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, IN_CHANNELS, size, size, generator=generator)
    targets = torch.arange(batch) % NUM_CLASSES
    return x.to(device), targets.to(device)


def synchronizer(device: str) -> Callable[[], None]:
    """Waits for the device's queued work, so that a timer measures it (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def time_rounds(
    jobs: Mapping[str, Callable[[], object]],
    *,
    warmup: int,
    repeats: int,
    device: str = "cpu",
) -> dict[str, list[float]]:
    """Wall-clock seconds of each job, `repeats` times, after `warmup` untimed rounds.

    The jobs run in rounds (each job once per round) rather than one after the other, so that
    a slow drift of the machine (frequency, a neighbour's load) spreads over all of them.
    """
    sync = synchronizer(device)
    for _ in range(warmup):
        for job in jobs.values():
            job()
    sync()
    seconds: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            sync()
            start = time.perf_counter()
            job()
            sync()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float], batch: int) -> dict[str, Any]:
    """Median (and best) seconds per batch and tiles per second, with every run kept."""
    middle = median(seconds)
    return {
        "batch": batch,
        "runs_s": [significant(value) for value in seconds],
        "median_s": significant(middle),
        "best_s": significant(min(seconds)),
        "tiles_per_s": significant(batch / middle),
    }


def significant(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant digits (never to zero, unlike a fixed decimal)."""
    return float(f"{value:.{digits}g}")


def set_threads(threads: int | None) -> int:
    """Sets torch's intra-op threads (default: every core) and returns the number in force."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch.get_num_threads()


def machine_info(device: str) -> dict[str, Any]:
    """What a reader needs to compare these numbers: CPU, cores, memory, versions, threads, date."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "platform": platform.platform(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_line(info: Mapping[str, Any]) -> str:
    """One Markdown line describing the machine of a result file."""
    where = info.get("gpu") or f"{info['cpu']}, {info['logical_cores']} logical cores"
    return (
        f"Machine: {where}, {info['memory_gib']} GiB; Python {info['python']}, "
        f"torch {info['torch']} with {info['torch_threads']} intra-op threads "
        f"({info['torch_interop_threads']} inter-op); {info['platform']}; {info['date']}; "
        f"load average at start {info['load_average_at_start']}."
    )


def write_report(
    out: Path, stem: str, report: Mapping[str, Any], markdown: Callable[[Any], str]
) -> None:
    """`out/results/STEM.json` and `STEM.md` (the report as `markdown` renders it), also printed."""
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"{stem}.md").write_text(text)
    print(text)


def write_mosaic(
    path: str, pieces: Iterable[str], grid: int, side: int, metadata: Mapping[str, str] = ()
) -> None:
    """A `grid × grid` mosaic GeoTIFF at `path` of the rasters `pieces` yields (each `side`²,
    row by row; a piece may be rewritten between yields). Georeferencing, bands, units, nodata
    and metadata come from the first piece; `metadata` is added to the dataset's."""
    from mscam.scene.raster import using_gdal

    with using_gdal() as gdal:
        out = None
        for k, piece_path in enumerate(pieces):
            row, col = divmod(k, grid)
            piece = gdal.Open(piece_path)
            if out is None:
                out = gdal.GetDriverByName("GTiff").Create(
                    path, side * grid, side * grid, piece.RasterCount, gdal.GDT_Float32,
                    ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                     "PREDICTOR=3", "BIGTIFF=IF_SAFER"],
                )  # fmt: skip
                out.SetGeoTransform(piece.GetGeoTransform())
                out.SetProjection(piece.GetProjection())
                out.SetMetadata({**piece.GetMetadata(), **dict(metadata)})
                for number in range(1, piece.RasterCount + 1):
                    source, target = piece.GetRasterBand(number), out.GetRasterBand(number)
                    target.SetNoDataValue(source.GetNoDataValue())
                    target.SetDescription(source.GetDescription())
                    target.SetUnitType(source.GetUnitType())
                    target.SetMetadata(source.GetMetadata())
            for number in range(1, piece.RasterCount + 1):
                data = piece.GetRasterBand(number).ReadAsArray()
                out.GetRasterBand(number).WriteArray(data, col * side, row * side)
            piece = None
        out.FlushCache()
        out = None  # closing writes the last blocks
