"""The scene pipeline: tiles → CNN → CAM → streaming mosaic → heatmap COG and localisation boxes.

How tile maps are made comparable (so empty sea stays cold and tiles meet without seams):
every tile first gets a forward pass (the prescreen). A tile whose target-class probability `p`
(softmax of the logits) is below `min_score` is cold: it gets no map and costs no backward pass.
A hot tile's map is `p · s(CAM)`: the CAM min-maxed on the tile, scaled by how sure the model is
that the tile holds the class. So a heatmap value is at most the probability of the best tile that
sees the pixel, and a per-tile min-max cannot paint an empty tile hot. The hot tiles' maps are
blended with a smooth window (`mosaic.py`); cold tiles, and hot tiles whose CAM is 0 everywhere,
add no weight (`blend_hot_tiles`), so they cannot dilute a neighbour's evidence.

The unit of work is a `TileWindow` (a band of tile rows): `process_window(scene, window, settings)`
reads it, runs the CNN and the CAM and returns its `BlendBlock`; it depends on nothing else, so
windows can be spread over machines and their blocks added in any order. `explain_scene` is the
single-machine loop over windows.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from mscam._version import __version__
from mscam.cam import create_explainer
from mscam.errors import Cancelled, InputError, ModelError
from mscam.models import LoadedModel, load_model
from mscam.models.fusion import fold_batchnorm
from mscam.models.select import bundled_model_for, finer_than_bundled
from mscam.scene.boxes import write_scene_boxes  # here too: its home before scene/boxes.py
from mscam.scene.heatmap_writer import HEATMAP_NODATA, HeatmapWriter, TileScore
from mscam.scene.mosaic import BlendBlock, StreamingMosaic, blend_hot_tiles
from mscam.scene.outputs import StagedOutputs, prepare_scene_outputs
from mscam.scene.preprocess import ScenePreprocessor
from mscam.scene.raster import RasterReader, limited_block_cache, streaming_cache_bytes
from mscam.scene.resample import (
    MappedBackHeatmap,
    WorkingGrid,
    open_working_scene,
    working_preprocessor,
)
from mscam.scene.settings import (  # noqa: F401 - SceneSettings and its limits lived here
    DEFAULT_BATCH,
    MAX_BATCH,
    MAX_BATCH_PIXELS,
    MAX_OVERLAP,
    MAX_THREADS,
    SceneSettings,
    default_batch,
    plan_batch,
    resolve_device,
)
from mscam.scene.spacing import DetailProbe
from mscam.scene.tiling import Tile, TileGrid, TileWindow, check_tile_map

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
CancelCheck = Callable[[], bool]


#: The progress message while the COG and the boxes are written (after the last window).
FINISHING = "writing the heatmap and the boxes"
#: A grid with this many times the tiles of no overlap gets a warning before the run.
MANY_TILES_FACTOR = 10


@dataclass
class PreparedWindow:
    """A window read and cut into tiles, ready for the CNN (`SceneJob.prepare_window`)."""

    window: TileWindow
    chips: np.ndarray  # (n, C, tile, tile) float32, NaN as 0
    places: list[Tile]
    valid: np.ndarray  # (rows, width) bool: where the input has data
    skipped: int


@dataclass
class WindowResult:
    block: BlendBlock
    hot_tiles: list[TileScore]
    tiles: int  # tiles given to the CNN
    skipped: int  # tiles skipped as mostly nodata
    empty_maps: int = 0  # hot tiles whose CAM is 0 everywhere


@dataclass
class SceneResult:
    heatmap: Path
    boxes: Path | None
    n_boxes: int
    tiles: int
    hot_tiles: int
    skipped_tiles: int
    seconds: float
    device: str
    target_class: str
    extra: dict = field(default_factory=dict)


class SceneJob:
    """One scene prepared for processing: model, explainer, grid, reader and preprocessing."""

    def __init__(self, scene: str | Path, settings: SceneSettings) -> None:
        self.scene = Path(scene)
        self.settings = settings
        self.reader = RasterReader(scene)  # first: a bad input fails before the model loads
        self.device = resolve_device(settings.device)
        self.batch = settings.batch or default_batch(self.device)
        # The detail the scene's pixels hold, measured on its speckle only where it decides
        # something: which bundled model, and how a scene finer than the model is brought to it.
        self.probe = DetailProbe(self.reader, settings.bands, settings.pixel_spacing)
        # No --model: the bundled model that fits the scene's polarisations and its detail.
        self.model_choice, spacing = None, self.probe.spacing
        if not settings.model:
            detail = self.probe.detail() if finer_than_bundled(spacing) else None
            self.model_choice = bundled_model_for(self.reader.info, settings.bands, spacing, detail)
        self.loaded: LoadedModel = load_model(
            self.model_choice.path if self.model_choice else settings.model,
            device=self.device,
            architecture_file=settings.architecture_file,
        )
        card = self.loaded.card
        self.target_class = settings.target_class or card.target_classes[0]
        if self.target_class not in card.classes:
            raise InputError(
                f"unknown target class {self.target_class!r}; the model knows: "
                f"{', '.join(card.classes)}"
            )
        self.target_index = card.classes.index(self.target_class)
        self.preprocessor = ScenePreprocessor(self.reader, card, settings.units, settings.bands)
        # A scene outside the spacing the model accepts is worked on at the model's spacing:
        # `reader`/`preprocessor` then read the working grid, `input_*` the scene itself.
        self.input_reader, self.input_preprocessor = self.reader, self.preprocessor
        self.working = WorkingGrid.plan(self.reader.info, card, settings.pixel_spacing)
        if self.working.resampled:
            units = dict(zip(self.preprocessor.band_indices, self.preprocessor.units))
            shrink = None
            if self.working.shrinks and self.probe.oversampled():
                shrink = "nearest"
                log.info(
                    "it is decimated to the model's spacing (nearest), not averaged: averaging "
                    "would blur its targets and smooth its speckle a second time"
                )
            self.reader = open_working_scene(self.input_reader, units, self.working, shrink)
            self.preprocessor = working_preprocessor(self.input_preprocessor, self.reader)
        self.grid = TileGrid(
            self.reader.info.width,
            self.reader.info.height,
            settings.tile or card.chip_size,
            settings.overlap,
        )
        # The model the tiles run through: BatchNorm folded into the convolutions, channels-last
        # (several times faster on CPU, max-pooling above all). Neither changes a value beyond
        # float rounding; the loaded model itself is left as it was.
        self.model = fold_batchnorm(self.loaded.model, keep=[card.target_layer])
        self.model.to(memory_format=torch.channels_last)
        self.explainer = create_explainer(
            settings.method, self.model, card.target_layer, **dict(settings.method_options)
        )
        self.batch = plan_batch(self.grid, self.batch, settings.batch is not None)
        if min(self.grid.tile_width, self.grid.tile_height) < card.chip_size:
            check_tile_map(self.model, card.target_layer, self.grid, card.in_channels)
        plain = TileGrid(self.grid.width, self.grid.height, self.grid.tile, 0.0)
        if len(self.grid) > MANY_TILES_FACTOR * len(plain):
            log.warning(
                "overlap %s makes %d tiles of %dx%d (%.0fx the %d of no overlap): the run takes "
                "that much longer",
                settings.overlap,
                len(self.grid),
                self.grid.tile_width,
                self.grid.tile_height,
                len(self.grid) / len(plain),
                len(plain),
            )

    def process_window(self, window: TileWindow, cancel: CancelCheck | None = None) -> WindowResult:
        """Read the window's rows, explain its tiles and blend them into a `BlendBlock`."""
        return self.explain_window(self.prepare_window(window), cancel)

    def prepare_window(self, window: TileWindow) -> PreparedWindow:
        """The CPU/I-O half of a window: read and preprocess its rows, cut the tiles to explain.

        Touches only the reader, so the scene loop runs it for the next window in a second
        thread while the CNN works on this one.
        """
        info = self.reader.info
        strip, valid = self.preprocessor.read(0, window.y0, info.width, window.y1 - window.y0)
        places, skipped = [], 0
        for tile in self.grid.tiles(window):
            rows = slice(tile.y0 - window.y0, tile.y1 - window.y0)
            if 1.0 - valid[rows, tile.x0 : tile.x1].mean() > self.settings.max_nodata:
                skipped += 1
                continue
            places.append(tile)
        shape = (len(places), strip.shape[0], self.grid.tile_height, self.grid.tile_width)
        chips = np.empty(shape, np.float32)
        for k, tile in enumerate(places):
            chips[k] = strip[:, tile.y0 - window.y0 : tile.y1 - window.y0, tile.x0 : tile.x1]
        np.nan_to_num(chips, copy=False, nan=0.0)
        return PreparedWindow(window, chips, places, valid, skipped)

    def explain_window(
        self, prepared: PreparedWindow, cancel: CancelCheck | None = None
    ) -> WindowResult:
        """The CNN half of a window: explain its tiles in batches and blend their maps."""
        window, chips, places = prepared.window, prepared.chips, prepared.places
        block = BlendBlock.empty(window.y0, window.y1, self.reader.info.width, valid=prepared.valid)
        hot: list[TileScore] = []
        empty, step = 0, self.batch
        for start in range(0, len(places), step):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            heat, p = self.explain_batch(torch.from_numpy(chips[start : start + step]))
            found, none = blend_hot_tiles(
                block, places[start : start + step], heat, p, self.settings.min_score
            )
            hot, empty = hot + found, empty + none
        return WindowResult(block, hot, len(places), prepared.skipped, empty)

    def explain_batch(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Tile heat `p · s(CAM)` (zero below `min_score`) and `p`, for a batch of chips."""
        min_score = self.settings.min_score

        def prescreen(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return torch.softmax(logits.float(), dim=1)[:, self.target_index] >= min_score

        batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
        out = self.explainer.compute(batch, self.target_index, keep=prescreen)
        probability = torch.softmax(out.logits.float(), dim=1)[:, self.target_index]
        heat = out.maps * probability[:, None, None] * out.kept[:, None, None]
        finite = torch.isfinite(out.logits).all(dim=1) & torch.isfinite(heat).flatten(1).all(1)
        if not bool(finite.all()):
            raise ModelError(
                f"the model's output is not finite (NaN or inf) on {int((~finite).sum())} of "
                f"{len(finite)} tiles: its weights hold NaN/inf, or they overflow on this input"
            )
        return heat.cpu().numpy(), probability.cpu().numpy()

    def windows(self) -> list[TileWindow]:
        """Bands of tile rows holding at least a batch of tiles, so batches are full even on
        scenes narrower than `batch` tiles."""
        return self.grid.windows(max(1, -(-self.batch // len(self.grid.xs))))

    def tags(self) -> dict[str, str]:
        card = self.loaded.card
        options = ",".join(f"{k}={v}" for k, v in self.settings.method_options)
        return {
            "method": self.settings.method + (f"({options})" if options else ""),
            "model": f"{card.name} {card.version}",
            **({"model_choice": self.model_choice.note} if self.model_choice else {}),
            "target_class": self.target_class,
            "tile": self.grid.tile_text,  # a --tile larger than the scene is cut to it
            "overlap": str(self.settings.overlap),
            "min_score": str(self.settings.min_score),
            # What the boxes were drawn with: `redraw_boxes` redraws them the same by default.
            "threshold": str(self.settings.threshold),
            "merge_gap": str(self.settings.merge_gap),
            "lattice": self.settings.lattice,
            **({"units": self.settings.units} if self.settings.units else {}),
            **({"bands": ",".join(self.settings.bands)} if self.settings.bands else {}),
            "scaling": "probability * minmax(CAM) per tile, sin^2-window blend of the hot tiles",
            **self.working.tags(),
            "version": __version__,
        }

    def heatmap_writer(self, path: Path) -> HeatmapWriter | MappedBackHeatmap:
        """The heatmap's writer: on the input's grid (mapped back from the working grid if any)."""
        if not self.working.resampled:
            return HeatmapWriter(path, self.reader.dataset, self.tags())
        width = self.input_reader.info.width
        return MappedBackHeatmap(
            path,
            self.working,
            self.input_reader.dataset,
            self.tags(),
            lambda y0, n: self.input_preprocessor.read(0, y0, width, n)[1],
        )


@lru_cache(maxsize=2)
def scene_job(scene: str, settings: SceneSettings) -> SceneJob:
    """One `SceneJob` per (scene, settings) and process, so windows share the loaded model."""
    return SceneJob(scene, settings)


def release_cached_jobs() -> None:
    """Drop the cached `SceneJob`s (their models and open GDAL datasets) now.

    A host that tears GDAL down before Python's last garbage collection (QGIS's `exitQgis`) must
    call this first: a dataset freed after GDAL's teardown is a segfault at exit. The QGIS plugin
    does on unload; plain Python does at exit (atexit)."""
    scene_job.cache_clear()
    gc.collect()


atexit.register(release_cached_jobs)


def process_window(scene: str, window: TileWindow, settings: SceneSettings) -> WindowResult:
    """The unit of work that can travel: one window's blended block, from the scene path, the
    window and the settings only."""
    return scene_job(str(scene), settings).process_window(window)


def explain_scene(
    scene: str | Path,
    heatmap: str | Path,
    boxes: str | Path | None = None,
    settings: SceneSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    overwrite: bool = True,
) -> SceneResult:
    """Explain a whole scene: write the heatmap COG and, if asked, the boxes GeoPackage.

    Nothing is left at `heatmap` or `boxes` if the run fails or is cancelled; the input is only
    read. `progress(fraction, message)` is called after each window; `cancel()` is polled between
    batches.
    """
    settings = settings or SceneSettings()
    started = time.perf_counter()
    # The scene's name as given: GDAL paths (/vsizip//abs/a.zip/x.tif) must not go through Path.
    scene = os.fspath(scene)
    # Before any work: every output writable, distinct, and none a file the inputs read.
    heatmap, boxes = prepare_scene_outputs(
        heatmap, boxes, [scene, settings.model, settings.architecture_file], overwrite=overwrite
    )
    # Both outputs are written under scratch names and renamed together at the end: a failed,
    # cancelled or killed run leaves the previous heatmap and boxes as they were.
    with torch_threads(settings.threads), StagedOutputs() as staged:
        staged_heatmap = Path(staged.add(heatmap))
        staged_boxes = None if boxes is None else Path(staged.add(boxes))
        result = _explain_scene(
            scene, staged_heatmap, staged_boxes, settings, progress, cancel, started
        )
        staged.commit()
    result.heatmap, result.boxes = heatmap, boxes
    return result


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to `threads` for the block (None: unchanged)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _explain_scene(
    scene: Path,
    heatmap: Path,
    boxes: Path | None,
    settings: SceneSettings,
    progress: Progress | None,
    cancel: CancelCheck | None,
    started: float,
) -> SceneResult:
    job = SceneJob(scene, settings)
    windows = job.windows()
    band_rows = max(window.y1 - window.y0 for window in windows)
    report = progress or (lambda fraction, message: None)
    totals = {"tiles": 0, "skipped": 0, "empty_maps": 0}
    hot_tiles: list[TileScore] = []
    with job.heatmap_writer(heatmap) as writer:
        with streaming_mosaic(job, writer, band_rows) as mosaic:
            # Reading and cutting the next window (GDAL and numpy, which release the GIL)
            # overlaps the CNN's work on this one.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mscam-read") as reader:
                results = _explained_windows(job, windows, reader, cancel)
                for index, result in enumerate(results):
                    mosaic.add(result.block)
                    mosaic.flush(job.grid.final_rows_before(index, windows))
                    hot_tiles += result.hot_tiles
                    totals["tiles"] += result.tiles
                    totals["skipped"] += result.skipped
                    totals["empty_maps"] += result.empty_maps
                    report((index + 1) / (len(windows) + 1), f"window {index + 1}/{len(windows)}")
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            report(len(windows) / (len(windows) + 1), FINISHING)
        return finish_scene(job, scene, writer, boxes, hot_tiles, totals, report, started)


@contextmanager
def streaming_mosaic(
    job: SceneJob, writer: HeatmapWriter | MappedBackHeatmap, band_rows: int
) -> Iterator[StreamingMosaic]:
    """The mosaic that streams finished rows into `writer`, with GDAL's block cache capped at
    what a band of `band_rows` rows needs while it runs (the single-process and Dask loops)."""
    with limited_block_cache(streaming_cache_bytes(job.reader.info, band_rows)):
        info = job.reader.info
        yield StreamingMosaic(info.width, info.height, writer.write_rows, nodata=HEATMAP_NODATA)


def finish_scene(
    job: SceneJob,
    scene: Path,
    writer: HeatmapWriter | MappedBackHeatmap,
    boxes: Path | None,
    hot_tiles: list[TileScore],
    totals: dict[str, int],
    report: Progress,
    started: float,
    device: str | None = None,
) -> SceneResult:
    """After the last heatmap row: the COG and the boxes (all or nothing together), the warnings
    and the result. Shared by the single-process loop and the Dask path (`scene.distributed`).

    The COG (compression, overviews) is built in a second thread while the boxes are found on
    the finished rows: GDAL releases the GIL, so the two overlap.
    """
    settings = job.settings
    heatmap = writer.path
    n_boxes = 0
    writer.set_hot_tiles(job.working.tiles_to_input(hot_tiles))
    rows = writer.close_rows()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mscam-cog") as pool:
        cog = pool.submit(writer.build_cog)
        try:
            if boxes is not None:
                n_boxes = write_scene_boxes(
                    rows,
                    boxes,
                    settings.threshold,
                    job.target_class,
                    settings.method,
                    job.working.tiles_to_input(hot_tiles),
                    merge_gap=settings.merge_gap,
                    lattice=settings.lattice,
                    scene=scene,
                    units=settings.units,
                    bands=settings.bands,
                    hot_reach=job.working.reach(),
                )
            cog.result()
        except BaseException:
            concurrent.futures.wait([cog])
            heatmap.unlink(missing_ok=True)  # all or nothing
            raise
    writer.discard()
    if totals["skipped"] and totals["skipped"] == len(job.grid):
        log.warning("every tile is mostly nodata: the heatmap is all nodata or zero")
    if totals["empty_maps"]:
        log.warning(
            "%d of %d hot tiles got an all-zero %s map (its weighted channels cancel): they add "
            "no heat, so a target only they see gets no box",
            totals["empty_maps"], len(hot_tiles), settings.method,
        )  # fmt: skip
    report(1.0, "done")
    return SceneResult(
        heatmap,
        boxes,
        n_boxes,
        totals["tiles"],
        len(hot_tiles),
        totals["skipped"],
        time.perf_counter() - started,
        device or str(job.device),
        job.target_class,
    )


def _explained_windows(
    job: SceneJob,
    windows: list[TileWindow],
    reader: ThreadPoolExecutor,
    cancel: CancelCheck | None,
) -> Iterator[WindowResult]:
    """The windows' results in order, each next window prepared in `reader` meanwhile."""
    pending = reader.submit(job.prepare_window, windows[0]) if windows else None
    for index in range(len(windows)):
        prepared = pending.result()
        if index + 1 < len(windows):
            pending = reader.submit(job.prepare_window, windows[index + 1])
        try:
            yield job.explain_window(prepared, cancel)
        except BaseException:
            pending.cancel()
            raise
