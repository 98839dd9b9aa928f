"""Build the QGIS plugin zip: `mscam_qgis/` with the top-level metadata.txt and the engine bundled.

    python3 scripts/package_plugin.py [--out dist/mscam_qgis.zip]

The zip's only root folder is `mscam_qgis/`; the engine `core/mscam` (bundled model included) goes
to `mscam_qgis/ext/mscam/`, which the plugin puts on sys.path when no other `mscam` is importable.
No caches or compiled files; entries are sorted and dated 1980 so the same tree gives the same zip.
Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "mscam_qgis"
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".aux.xml"}


def files_under(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts[:-1]):
            continue
        if (
            path.is_file()
            and not path.name.startswith(".")
            and not any(path.name.endswith(suffix) for suffix in SKIPPED_SUFFIXES)
        ):
            found.append(path)
    return found


def plugin_entries(root: Path = ROOT) -> list[tuple[str, Path]]:
    """(name in the zip, file on disk) of everything the plugin zip holds."""
    plugin = [(p.relative_to(root / PLUGIN).as_posix(), p) for p in files_under(root / PLUGIN)]
    # metadata.txt has one source, the top level; ext/ is the bundle's, never the checkout's.
    entries = [
        (f"{PLUGIN}/{name}", p)
        for name, p in plugin
        if name != "metadata.txt" and not name.startswith("ext/")
    ]
    entries.append((f"{PLUGIN}/metadata.txt", root / "metadata.txt"))
    engine = root / "core" / "mscam"
    entries += [
        (f"{PLUGIN}/ext/mscam/{p.relative_to(engine).as_posix()}", p) for p in files_under(engine)
    ]
    return sorted(entries)


def build(out: Path, root: Path = ROOT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in plugin_entries(root):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / f"{PLUGIN}.zip")
    args = parser.parse_args(argv)
    out = build(args.out)
    with zipfile.ZipFile(out) as archive:
        count = len(archive.namelist())
    print(f"{out}: {count} files, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
