"""The version of mscam (one place: the package, pyproject and the plugin read it)."""

__version__ = "0.1.0"
