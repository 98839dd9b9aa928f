"""mscam: why a CNN decides what it decides on SAR imagery.

MS-CAM (multi-weight self-matching class activation mapping) and the baseline CAM methods for any
PyTorch CNN, plus a streaming, georeferenced scene pipeline.

>>> import torch, mscam
>>> model = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.ReLU(),
...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
...                             torch.nn.Linear(8, 3))
>>> maps = mscam.explain(model, torch.rand(4, 2, 32, 32), method="ms-cam", target_layer="1")
>>> tuple(maps.shape)
(4, 32, 32)

Only torch and numpy are needed to import this package; GDAL is imported lazily by the raster and
vector I/O of the scene pipeline.
"""

from mscam._version import __version__

__all__ = ["METHODS", "CAMOutput", "__version__", "create_explainer", "explain"]


def __getattr__(name: str):
    """`mscam.METHODS`, `mscam.explain`…, imported when first used: so the torch-free modules
    (`mscam.scene.settings`, `mscam.errors`) import where torch is missing (the QGIS plugin)."""
    if name in __all__:
        import mscam.cam

        return getattr(mscam.cam, name)
    raise AttributeError(f"module 'mscam' has no attribute {name!r}")
