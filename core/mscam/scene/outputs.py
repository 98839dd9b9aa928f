"""Outputs that never replace an input, land together, and leave no scratch file behind.

- `input_files(path)` is every local file GDAL reads for a raster: the file itself, a VRT's
  sources (nested VRTs too), the archive behind `/vsizip/`, `/vsigzip/` or `/vsitar/`, the
  members a SAFE manifest names (the manifest or its product folder given).
- `check_outputs` runs before any work: outputs must be distinct, writable, not folders, and
  none may be (by path, symbolic link or hard link) a file an input reads.
- `StagedOutputs` writes each output under a hidden temporary name beside it and renames them
  all at the end, with SIGTERM/SIGINT held off during the renames, so a run either replaces the
  whole set or leaves the previous one as it was.
- Scratch names carry the writer's process id; `remove_stale_scratch` deletes those of processes
  that no longer run (a SIGKILL leaves them), on the next run that writes to the same folder.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Union

from mscam.errors import OutputError, Terminated

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: GDAL's archive and compression file systems: the real file is a prefix of what follows.
ARCHIVE_PREFIXES = ("/vsizip/", "/vsigzip/", "/vsitar/", "/vsi7z/", "/vsirar/")
#: Sidecars a writer may leave beside a temporary (SQLite journals, GDAL's PAM file).
SIDECARS = ("", "-wal", "-shm", "-journal", ".aux.xml")
_SCRATCH = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.(?:tmp|scratch)(?:\.[A-Za-z0-9]+)?$")
_MAX_DEPTH = 8  # VRTs of VRTs: deep enough for any real mosaic, bounded against loops


def scratch_path(target: PathLike, kind: str = "tmp") -> str:
    """A hidden sibling of `target` for work in progress: `.NAME.PID.RANDOM.KIND.EXT`.

    Same folder (so the final rename is atomic), same extension (drivers check it), and the
    process id, so `remove_stale_scratch` can tell a dead run's leftovers from a live one's.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(target)))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}{ext}")


def remove_files(path: PathLike) -> None:
    """Remove `path` and the sidecars a writer may have left beside it (quietly)."""
    for suffix in SIDECARS:
        try:
            os.remove(os.fspath(path) + suffix)
        except OSError:
            pass


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_scratch(folder: PathLike) -> list[str]:
    """Delete scratch files (see `scratch_path`) in `folder` whose process no longer runs.

    Only names of our own pattern are touched, and only for process ids that do not exist on
    this machine; returns the names removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        base = next((name[: -len(s)] for s in SIDECARS[1:] if name.endswith(s)), name)
        found = _SCRATCH.match(base)
        if found is None or _process_alive(int(found.group(1))):
            continue
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            continue
        removed.append(name)
    if removed:
        log.info("removed %d scratch file(s) of an interrupted run in %s", len(removed), folder)
    return removed


def archive_file(path: str) -> str | None:
    """The local file behind a GDAL archive path (`/vsizip//abs/a.zip/x.tif` → `/abs/a.zip`)."""
    for prefix in ARCHIVE_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if rest.startswith("{") and "}" in rest:  # GDAL's {archive}/member form
                rest = rest[1 : rest.index("}")]
            if rest.startswith("/vsi"):
                return archive_file(rest)
            # The archive is the longest existing file that is a prefix of the rest.
            candidate = rest
            while candidate and candidate != os.path.dirname(candidate):
                if os.path.isfile(candidate):
                    return candidate
                candidate = os.path.dirname(candidate)
            return None
    return None


def input_files(path: PathLike, _depth: int = 0, _seen: set[str] | None = None) -> set[str]:
    """Absolute real paths of every local file GDAL reads to open raster `path`."""
    name = os.fspath(path)
    seen = set() if _seen is None else _seen
    if name in seen or _depth > _MAX_DEPTH:
        return set()
    seen.add(name)
    found: set[str] = set()
    local = archive_file(name) if name.startswith("/vsi") else name
    if local is not None and os.path.exists(local):
        found.add(os.path.realpath(local))
    from mscam.scene.gdalenv import using_gdal

    try:
        with using_gdal() as gdal:
            dataset = gdal.Open(name)
            listed = list(dataset.GetFileList() or []) if dataset is not None else []
            dataset = None
    except RuntimeError:  # unreadable: nothing more to list (opening it will say why)
        listed = []
    for item in listed:
        if item == name:
            continue
        local = archive_file(item) if item.startswith("/vsi") else item
        if local is not None and os.path.exists(local):
            found.add(os.path.realpath(local))
        if item.lower().endswith(".vrt") or item.startswith("/vsi"):
            found |= input_files(item, _depth + 1, seen)
    return found


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: same real path, or same inode (hard links)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Iterable[PathLike | None] = (),
    *,
    overwrite: bool = True,
) -> None:
    """Refuse, before any work, outputs that cannot be written or would replace an input.

    `outputs` maps a name for the message (`"heatmap"`, `"--boxes"`) to a path or None;
    `inputs` are the rasters, vectors and files the command reads (a raster's VRT sources and
    archives count, see `input_files`).
    """
    given = {label: os.fspath(path) for label, path in outputs.items() if path is not None}
    read: set[str] = set()
    for source in inputs:
        if source is None:
            continue
        source = os.fspath(source)
        read |= input_files(source) if _looks_like_raster(source) else _plain(source)
    labels = list(given)
    for index, label in enumerate(labels):
        path = given[label]
        if path.startswith("/vsi"):
            raise OutputError(f"cannot write the {label} to {path}: outputs must be local files")
        target = Path(path).absolute()
        if target.is_dir():
            raise OutputError(f"cannot write the {label} to {path}: it is a folder")
        if not target.parent.is_dir():
            raise OutputError(
                f"cannot write the {label} to {path}: folder {target.parent} does not exist"
            )
        if not os.access(target.parent, os.W_OK | os.X_OK):
            raise OutputError(
                f"cannot write the {label} to {path}: folder {target.parent} is not writable"
            )
        if target.exists() and not overwrite:
            raise OutputError(f"{path} exists (the {label} would replace it)")
        if os.path.lexists(target) and not (target.is_file() or target.is_symlink()):
            raise OutputError(f"cannot write the {label} to {path}: it is not a regular file")
        for other in labels[:index]:
            if same_file(path, given[other]):
                raise OutputError(f"the {other} and the {label} are the same file: {path}")
        for source in read:
            if same_file(path, source):
                raise OutputError(
                    f"refusing to write the {label} to {path}: it is (or links to) {source}, "
                    "which the input reads"
                )


def prepare_scene_outputs(
    heatmap: PathLike,
    boxes: PathLike | None,
    inputs: Iterable[PathLike | None],
    *,
    overwrite: bool = True,
) -> tuple[Path, Path | None]:
    """A scene run's outputs before any work: checked (`check_outputs`), and the scratch that
    killed runs left in their folders removed. Returns them as paths."""
    heatmap = Path(heatmap)
    boxes = None if boxes is None else Path(boxes)
    check_outputs({"heatmap": heatmap, "boxes": boxes}, inputs, overwrite=overwrite)
    for folder in {heatmap.absolute().parent, *([boxes.absolute().parent] if boxes else [])}:
        remove_stale_scratch(folder)
    return heatmap, boxes


def _looks_like_raster(path: str) -> bool:
    # Folders too: GDAL opens a product folder (a Sentinel-1 .SAFE) by its path, and its
    # measurement and annotation files are then inputs like any file it names.
    return path.startswith("/vsi") or os.path.isfile(path) or os.path.isdir(path)


def _plain(path: str) -> set[str]:
    local = archive_file(path) if path.startswith("/vsi") else path
    return {os.path.realpath(local)} if local and os.path.exists(local) else set()


# --- signals -------------------------------------------------------------------------------------

_critical = {"depth": 0, "pending": None}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _critical["depth"]:
        _critical["pending"] = signum
        return
    # A second SIGTERM must not cut the cleanup that the first one starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"terminated by signal {signum}")


def install_signal_handlers() -> None:
    """SIGTERM raises `Terminated` (cleanup runs as for Ctrl-C). Main thread only."""
    signal.signal(signal.SIGTERM, _on_sigterm)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT for the block (a few renames) and deliver them after it."""
    previous_int = None
    if _is_main_thread():
        previous_int = signal.getsignal(signal.SIGINT)

        def hold_int(signum: int, frame: FrameType | None) -> None:
            _critical["pending"] = signum

        signal.signal(signal.SIGINT, hold_int)
    _critical["depth"] += 1
    try:
        yield
    finally:
        _critical["depth"] -= 1
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
        pending, _critical["pending"] = _critical["pending"], None
        if pending is not None and not _critical["depth"]:
            if pending == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise Terminated(f"terminated by signal {pending}")


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class StagedOutputs:
    """Several outputs written under scratch names and renamed onto their paths together.

    >>> with StagedOutputs() as staged:  # doctest: +SKIP
    ...     a, b = staged.add("heat.tif"), staged.add("boxes.gpkg")
    ...     write(a); write(b)
    ...     staged.commit()

    Leaving the block without `commit()` (an error, Ctrl-C, SIGTERM) removes the scratch files
    and leaves the previous outputs untouched. `commit()` first removes the later outputs' old
    files, then renames in order, signals held: even a SIGKILL between two renames never leaves
    a new output beside an old one of the set, only a missing one.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []
        self._done = False

    def add(self, target: PathLike) -> str:
        temporary = scratch_path(target)
        self._staged.append((temporary, os.path.abspath(os.fspath(target))))
        return temporary

    def commit(self) -> None:
        with signals_held():
            try:
                for _, target in self._staged[1:]:
                    if os.path.lexists(target):
                        os.remove(target)
                for temporary, target in self._staged:
                    os.replace(temporary, target)
            except OSError as exc:
                raise OutputError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
            self._done = True

    def discard(self) -> None:
        for temporary, _ in self._staged:
            remove_files(temporary)

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.discard()
