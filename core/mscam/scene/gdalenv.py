"""GDAL's process-wide settings, used safely: exceptions and quiet errors (`using_gdal`) and a
capped block cache (`limited_block_cache`), both correct when several threads use them at once.

The lowest GDAL layer of `mscam.scene`: `raster`, `vector` and `outputs` build on it. `osgeo` is
imported inside the functions so that importing this module does not need GDAL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mscam.errors import InputError

#: Threads inside `using_gdal` now, and the modules' exception flags from before the first.
_GDAL_LOCK = threading.Lock()
_gdal_users = 0
_gdal_previous: list[bool] = []


@contextmanager
def using_gdal() -> Iterator[Any]:
    """Yield ``osgeo.gdal`` with exceptions on (gdal, ogr, osr) and its stderr chatter off.

    QGIS and other plugins share the process, so each module's exception flag is put back: by
    the last of the threads inside (the flags are process-wide, so a thread that left first must
    not switch exceptions off under one still working). The quiet error handler is per thread.
    """
    global _gdal_users
    try:
        from osgeo import gdal, ogr, osr
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise InputError("GDAL's Python bindings (osgeo) are needed for raster I/O") from exc
    modules = (gdal, ogr, osr)
    with _GDAL_LOCK:
        if _gdal_users == 0:
            _gdal_previous[:] = [module.GetUseExceptions() for module in modules]
            for module in modules:
                module.UseExceptions()
        _gdal_users += 1
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield gdal
    finally:
        gdal.PopErrorHandler()
        with _GDAL_LOCK:
            _gdal_users -= 1
            if _gdal_users == 0:
                # GDAL keeps the modules' handlers on one stack: undo them in reverse order.
                for module, had_exceptions in reversed(list(zip(modules, _gdal_previous))):
                    if not had_exceptions:
                        module.DontUseExceptions()


#: The caps asked for by the `limited_block_cache` blocks open now (any thread), and GDAL's
#: setting from before the first of them.
_CACHE_LOCK = threading.Lock()
_cache_caps: list[int] = []
_cache_previous = 0


@contextmanager
def limited_block_cache(max_bytes: int) -> Iterator[None]:
    """GDAL's block cache capped at `max_bytes` for the block (GDAL's default is 5 % of RAM).

    A streaming pass touches every block once, so a big cache only grows memory with the scene;
    a smaller setting of the user's (`GDAL_CACHEMAX`) is kept. The cache is process-wide: while
    blocks in several threads overlap, the smallest cap holds, and the setting from before the
    first comes back when the last one ends.
    """
    global _cache_previous
    with using_gdal() as gdal, _CACHE_LOCK:
        if not _cache_caps:
            _cache_previous = gdal.GetCacheMax()
        _cache_caps.append(max_bytes)
        gdal.SetCacheMax(min([_cache_previous, *_cache_caps]))
    try:
        yield
    finally:
        with using_gdal() as gdal, _CACHE_LOCK:
            _cache_caps.remove(max_bytes)
            gdal.SetCacheMax(min([_cache_previous, *_cache_caps]))
