"""The tile grid over a scene, and the windows of tiles that are the pipeline's unit of work.

Tiles are `tile × tile` pixels with a fractional `overlap`. Along each axis the tile origins are
`0, stride, 2·stride, …` and the last tile is moved back to end exactly at the raster's edge, so
every tile lies inside the raster: no padding, no resampling, no distortion at the edges (the last
tile simply overlaps its neighbour more). A raster smaller than a tile along an axis gets one tile
as long as the raster along that axis (fully convolutional CNNs with global pooling accept it).

A `TileWindow` is a band of whole tile rows. Processing a window (read, CNN, CAM, blend) depends
only on the scene, the window and the settings, so windows can run anywhere and in any order; the
mosaic adds their blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from mscam.errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Tile:
    """One tile: its pixel window (`x0`, `y0`, `width`, `height`) and its grid position."""

    row: int
    col: int
    x0: int
    y0: int
    width: int
    height: int

    @property
    def x1(self) -> int:
        return self.x0 + self.width

    @property
    def y1(self) -> int:
        return self.y0 + self.height


@dataclass(frozen=True)
class TileWindow:
    """Tile rows `row0 … row1 − 1` of a grid; they cover raster rows `y0 … y1 − 1`."""

    row0: int
    row1: int
    y0: int
    y1: int


def axis_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins along one axis: every `stride`, the last one flush with the edge."""
    if length <= tile:
        return [0]
    origins = list(range(0, length - tile, stride))
    origins.append(length - tile)
    return origins


@dataclass(frozen=True)
class TileGrid:
    """Tiles of `tile` pixels with fractional `overlap` over a `width × height` raster."""

    width: int
    height: int
    tile: int
    overlap: float = 0.25

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"the raster is empty ({self.width}×{self.height} pixels)")
        if self.tile < 8:
            raise ValueError(f"tile must be at least 8 pixels, got {self.tile}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")

    @property
    def stride(self) -> int:
        return max(1, round(self.tile * (1.0 - self.overlap)))

    @cached_property
    def xs(self) -> list[int]:
        return axis_origins(self.width, self.tile, self.stride)

    @cached_property
    def ys(self) -> list[int]:
        return axis_origins(self.height, self.tile, self.stride)

    @property
    def tile_width(self) -> int:
        return min(self.tile, self.width)

    @property
    def tile_height(self) -> int:
        return min(self.tile, self.height)

    @property
    def tile_text(self) -> str:
        """The tile actually used, as the tags say it: "64", or "64x40" where a tile larger than
        the scene was cut to it."""
        width, height = self.tile_width, self.tile_height
        return str(width) if width == height else f"{width}x{height}"

    @property
    def shape(self) -> tuple[int, int]:
        """(tile rows, tile columns)."""
        return len(self.ys), len(self.xs)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def row(self, row: int) -> list[Tile]:
        y0 = self.ys[row]
        return [
            Tile(row, col, x0, y0, self.tile_width, self.tile_height)
            for col, x0 in enumerate(self.xs)
        ]

    def __iter__(self) -> Iterator[Tile]:
        for row in range(len(self.ys)):
            yield from self.row(row)

    def windows(self, rows_per_window: int = 1) -> list[TileWindow]:
        """The grid cut into bands of `rows_per_window` tile rows, top to bottom."""
        if rows_per_window < 1:
            raise ValueError(f"rows_per_window must be at least 1, got {rows_per_window}")
        bands = []
        for row0 in range(0, len(self.ys), rows_per_window):
            row1 = min(row0 + rows_per_window, len(self.ys))
            bands.append(
                TileWindow(row0, row1, self.ys[row0], self.ys[row1 - 1] + self.tile_height)
            )
        return bands

    def tiles(self, window: TileWindow) -> list[Tile]:
        return [tile for row in range(window.row0, window.row1) for tile in self.row(row)]

    def final_rows_before(self, window_index: int, windows: list[TileWindow]) -> int:
        """Raster rows above this are complete once windows `0 … window_index` are added."""
        if window_index + 1 >= len(windows):
            return self.height
        return windows[window_index + 1].y0


def check_tile_map(model: torch.nn.Module, layer: str, grid: TileGrid, channels: int) -> None:
    """Refuse tiles so small that the target layer's map is a single cell: every CAM of such a
    tile is flat, so its heat would be 0 however sure the model is."""
    import torch  # here: the grid itself needs no torch

    captured: dict[str, tuple[int, ...]] = {}
    hook = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, output: captured.update(shape=tuple(output.shape))
    )
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, grid.tile_height, grid.tile_width, device=device))
    finally:
        hook.remove()
    if min(captured["shape"][-2:]) < 2:
        raise InputError(
            f"a {grid.tile_width}x{grid.tile_height} tile gives the model's target layer a "
            f"{captured['shape'][-2]}x{captured['shape'][-1]} map: too coarse to localise "
            "anything; use a larger --tile"
        )
