"""What the plugin needs from Python (torch and the engine `mscam`), how to tell, how to install.

The engine ships inside the plugin (`ext/mscam`) and is used when no other `mscam` is importable
(a development checkout puts `core/` on PYTHONPATH instead). PyTorch is too big to bundle: the
user installs it into QGIS's own Python, or with one click into a folder private to the plugin,
`<profile>/python/mscam_deps`, which goes at the end of `sys.path` so that packages QGIS already
has (numpy above all: GDAL's bindings are built against it) keep precedence.

Nothing here imports torch at module level: `engine_status()` tries it when asked.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

TORCH_REQUIREMENT = "torch==2.13.0"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEPS_FOLDER_NAME = "mscam_deps"
BUNDLED_ENGINE = Path(__file__).resolve().parent / "ext"


class MissingDependency(RuntimeError):
    """torch or mscam cannot be imported; the message says exactly what to install."""


def plugin_deps_folder() -> Path:
    """`<QGIS profile>/python/mscam_deps`, the plugin-private install target."""
    from qgis.core import QgsApplication

    return Path(QgsApplication.qgisSettingsDirPath()) / "python" / DEPS_FOLDER_NAME


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def prepare_sys_path() -> None:
    """Make the plugin-private packages and, when no other is importable, the bundled engine
    importable. Called once when QGIS loads the plugin; importing nothing heavy."""
    deps = str(plugin_deps_folder())
    if os.path.isdir(deps) and deps not in sys.path:
        sys.path.append(deps)
    if not _findable("mscam") and (BUNDLED_ENGINE / "mscam").is_dir():
        sys.path.append(str(BUNDLED_ENGINE))
    importlib.invalidate_caches()


def qgis_python() -> str:
    """The Python interpreter behind QGIS's embedded Python. Not sys.executable first: inside QGIS
    it is QGIS itself, or whatever `python3` comes first on PATH (perhaps another version)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = Path(sys.exec_prefix)
    if os.name == "nt":
        candidates = [prefix / "python3.exe", prefix / "python.exe"]
    else:
        candidates = [prefix / "bin" / f"python{version}", prefix / "bin" / "python3"]
    if Path(sys.executable).name.lower().startswith(f"python{version}"):
        candidates.append(Path(sys.executable))
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return shutil.which(f"python{version}") or "python3"


def wants_cpu_wheel() -> bool:
    """Linux and Windows without an NVIDIA driver: PyTorch's CPU wheel (~200 MB, not ~2.5 GB)."""
    return platform.system() in ("Linux", "Windows") and shutil.which("nvidia-smi") is None


def install_command(
    target: str | os.PathLike | None = None, python: str | None = None, cpu_only: bool | None = None
) -> list[str]:
    """The pip command that installs torch into the plugin-private folder (or `target`)."""
    target = Path(target) if target is not None else plugin_deps_folder()
    command = [
        python or qgis_python(),
        "-m",
        "pip",
        "install",
        "--upgrade",
        "--target",
        str(target),
        "--no-warn-script-location",
        TORCH_REQUIREMENT,
    ]
    if wants_cpu_wheel() if cpu_only is None else cpu_only:
        command += ["--index-url", PYTORCH_CPU_INDEX]
    return command


@dataclass(frozen=True)
class EngineStatus:
    """What is importable, and from where."""

    torch_version: str | None
    torch_path: str | None
    torch_error: str | None
    device: str | None  # e.g. "CPU", "CUDA (NVIDIA H100)"
    mscam_version: str | None
    mscam_path: str | None
    mscam_error: str | None

    @property
    def ok(self) -> bool:
        return self.torch_version is not None and self.mscam_version is not None

    def missing_message(self) -> str:
        """One clear message saying what to install; "" when nothing is missing."""
        if self.torch_version is None:
            return (
                f"MS-CAM needs PyTorch, which QGIS's Python cannot import ({self.torch_error}). "
                f"Install {TORCH_REQUIREMENT} for QGIS's Python: Raster ▸ MS-CAM ▸ About MS-CAM "
                f"and its dependencies ▸ Install PyTorch does it for you, or run: "
                f"{shlex.join(install_command())} (pip's --target folder is private to the "
                f"plugin; restart QGIS afterwards)."
            )
        if self.mscam_version is None:
            return (
                f"The MS-CAM engine (the Python package mscam) cannot be imported "
                f"({self.mscam_error}). Reinstall the MS-CAM plugin from its zip, which bundles "
                f"the engine in {BUNDLED_ENGINE}, or put the engine's core/ folder on PYTHONPATH."
            )
        return ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def engine_status() -> EngineStatus:
    """Try to import torch and mscam (never raises): versions, paths, device, or the errors."""
    torch_version = torch_path = torch_error = device = None
    try:
        import torch

        torch_version, torch_path = torch.__version__, os.path.dirname(torch.__file__)
        device = "CPU"
        if torch.cuda.is_available():
            device = f"CUDA ({torch.cuda.get_device_name(0)})"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "Apple MPS (the engine runs on the CPU; choose cpu)"
    except Exception as exc:  # a broken install raises anything from OSError to RuntimeError
        torch_error = _one_line(exc)
    mscam_version = mscam_path = mscam_error = None
    if torch_version is None:
        mscam_error = "needs torch"
    else:
        try:
            import mscam

            mscam_version, mscam_path = mscam.__version__, os.path.dirname(mscam.__file__)
        except Exception as exc:
            mscam_error = _one_line(exc)
    return EngineStatus(
        torch_version, torch_path, torch_error, device, mscam_version, mscam_path, mscam_error
    )


def require_engine() -> None:
    """Raise `MissingDependency` with the install message unless torch and mscam import."""
    status = engine_status()
    if not status.ok:
        raise MissingDependency(status.missing_message())


def diagnostics(status: EngineStatus | None = None) -> str:
    """A plain-text report for the About dialog and for bug reports."""
    from qgis.core import Qgis

    status = status or engine_status()
    lines = [
        f"QGIS {Qgis.QGIS_VERSION}",
        f"Python {platform.python_version()} ({qgis_python()})",
        f"PyTorch: {status.torch_version or 'missing'}"
        + (f" from {status.torch_path}" if status.torch_path else f" — {status.torch_error}"),
        f"Device: {status.device or 'none (no PyTorch)'}",
        f"mscam engine: {status.mscam_version or 'missing'}"
        + (f" from {status.mscam_path}" if status.mscam_path else f" — {status.mscam_error}"),
        f"Plugin-private packages: {plugin_deps_folder()}",
    ]
    if not status.ok:
        lines += ["", status.missing_message()]
    return "\n".join(lines)
