"""Errors a user can act on: the command line prints them as one line and exits non-zero."""


class MscamError(Exception):
    """Base of every error mscam reports to a user (one clear line, no traceback)."""

    def __init__(self, *args: object) -> None:
        # One line whatever the message quotes: GDAL 3.10 appends "\nMay be caused by: …".
        if len(args) == 1 and isinstance(args[0], str):
            args = (" ".join(args[0].split()),)
        super().__init__(*args)


class InputError(MscamError, ValueError):
    """A raster, vector, argument or option the user gave is missing, unreadable or invalid."""


class ModelError(MscamError, ValueError):
    """A model card or weights file is missing, malformed, unsafe or does not fit its network."""


class OutputError(MscamError, OSError):
    """An output cannot be written (unwritable folder, existing file without overwrite…)."""


class Cancelled(MscamError):
    """The run was cancelled by the caller (QGIS task, Ctrl-C)."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM). A BaseException like KeyboardInterrupt, so every
    cleanup that runs for Ctrl-C runs for it too; the command line then exits 143."""
