"""Blending tile maps into one seamless scene map, streamed a band of rows at a time.

Every tile map is weighted by a smooth window `w(i, j) = sin²(π(i + ½)/h) · sin²(π(j + ½)/w)`
and the mosaic is `Σ_t w_t m_t / Σ_t w_t`. The window is positive everywhere (the `½` keeps the
border pixels' weight above zero), so the division is exact wherever a tile covers a pixel:
constant tile maps give a constant mosaic whatever the overlap, and the weights fade each tile in
and out where tiles overlap, so no seam shows between blended tiles. The scene pipeline blends
only tiles that carry a map (`pipeline.blend_hot_tiles`); pixels that no blended tile covers
(cold sea, or tiles skipped as nodata) are 0, so a hot map that is not 0 at its border ends there.

`BlendBlock` is what one window of tiles produces (the weighted sums over its rows);
`StreamingMosaic` adds blocks and hands finished rows to a sink, so memory holds one band of rows
(about two tile heights × the scene's width), never the scene.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mscam.scene.heatmap_writer import TileScore
from mscam.scene.tiling import Tile


@lru_cache(maxsize=8)
def blend_window(height: int, width: int) -> np.ndarray:
    """The (height, width) float32 blending weights of one tile (read-only, cached)."""

    def axis(n: int) -> np.ndarray:
        return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2

    window = np.outer(axis(height), axis(width)).astype(np.float32)
    window.setflags(write=False)
    return window


@dataclass
class BlendBlock:
    """Weighted sums `Σ w·m` (`numerator`) and `Σ w` (`weight`) over raster rows `y0 … y0 + h − 1`,
    full scene width, and where the input has data (`valid`)."""

    y0: int
    numerator: np.ndarray
    weight: np.ndarray
    valid: np.ndarray

    @classmethod
    def empty(cls, y0: int, y1: int, width: int, valid: np.ndarray | None = None) -> BlendBlock:
        shape = (y1 - y0, width)
        if valid is None:
            valid = np.zeros(shape, bool)
        return cls(y0, np.zeros(shape, np.float32), np.zeros(shape, np.float32), valid)

    @property
    def y1(self) -> int:
        return self.y0 + self.numerator.shape[0]

    def add_tile(self, x0: int, y0: int, tile_map: np.ndarray) -> None:
        """Blend one tile map whose top-left pixel is (x0, y0) in raster coordinates."""
        h, w = tile_map.shape
        window = blend_window(h, w)
        rows = slice(y0 - self.y0, y0 - self.y0 + h)
        self.numerator[rows, x0 : x0 + w] += window * tile_map
        self.weight[rows, x0 : x0 + w] += window


RowSink = Callable[[int, np.ndarray], None]


class StreamingMosaic:
    """Adds `BlendBlock`s and emits blended rows to `sink(y0, rows)` once no later block can
    touch them (the caller says so with `flush(until_row)`). Pixels without input data are
    emitted as `nodata`."""

    def __init__(self, width: int, height: int, sink: RowSink, nodata: float = 0.0) -> None:
        self.width = width
        self.height = height
        self.sink = sink
        self.nodata = nodata
        self.top = 0  # first row not yet emitted
        self._pending = BlendBlock.empty(0, 0, width)

    def add(self, block: BlendBlock) -> None:
        if block.y0 < self.top:
            raise ValueError(f"block starts at row {block.y0}, above the emitted rows ({self.top})")
        if block.y1 > self._pending.y1:
            grown = BlendBlock.empty(self.top, block.y1, self.width)
            grown.numerator[: self._pending.numerator.shape[0]] = self._pending.numerator
            grown.weight[: self._pending.weight.shape[0]] = self._pending.weight
            grown.valid[: self._pending.valid.shape[0]] = self._pending.valid
            self._pending = grown
        rows = slice(block.y0 - self.top, block.y1 - self.top)
        self._pending.numerator[rows] += block.numerator
        self._pending.weight[rows] += block.weight
        self._pending.valid[rows] |= block.valid

    def flush(self, until_row: int) -> None:
        """Emit rows `top … until_row − 1`: they are final."""
        until_row = min(until_row, self.height)
        if until_row <= self.top:
            return
        n = until_row - self.top
        numerator = self._pending.numerator[:n]
        weight = self._pending.weight[:n]
        rows = np.zeros_like(numerator)
        np.divide(numerator, weight, out=rows, where=weight > 0)
        rows[~self._pending.valid[:n]] = self.nodata
        self.sink(self.top, rows)
        rest = BlendBlock.empty(until_row, max(until_row, self._pending.y1), self.width)
        rest.numerator[:] = self._pending.numerator[n:]
        rest.weight[:] = self._pending.weight[n:]
        rest.valid[:] = self._pending.valid[n:]
        self._pending = rest
        self.top = until_row


def blend_hot_tiles(
    block: BlendBlock,
    tiles: Sequence[Tile],
    heat: np.ndarray,
    probability: np.ndarray,
    min_score: float,
) -> tuple[list[TileScore], int]:
    """Blend the maps of the hot tiles (`p ≥ min_score`) into `block`; return those tiles and
    how many of them have a map that is 0 everywhere.

    Only a hot tile whose map shows evidence somewhere (max > 0) is blended. A cold tile has no
    map (the prescreen skipped its CAM), and a hot tile whose CAM is 0 everywhere (all its
    weighted channels cancel, as MS-CAM's can) has no spatial evidence: blending either as zeros
    would dilute a hot neighbour's evidence where they overlap, and a ship near the edge of the
    one tile that sees it whole would fade out under a neighbour that only sees its part. So a
    pixel's heat is the smooth blend of the hot maps that cover it, and 0 where none does.
    """
    hot, empty = [], 0
    for tile, tile_heat, p in zip(tiles, heat, probability):
        if p >= min_score:
            hot.append(TileScore(tile.x0, tile.y0, tile.x1, tile.y1, float(p)))
            if tile_heat.max() > 0:
                block.add_tile(tile.x0, tile.y0, tile_heat)
            else:
                empty += 1
    return hot, empty
