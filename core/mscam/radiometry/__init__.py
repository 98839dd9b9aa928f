"""Radiometry: SAR units (dB, linear σ0, amplitude, DN), band roles, the model's dB windows, and
Sentinel-1 calibration tables.

The lowest SAR layer: the scene pipeline (`mscam.scene`) and the models (`mscam.models`) read
rasters through it, and the synthetic world (`mscam.sar`) and training build on it. It imports
nothing of mscam but `mscam.errors`, and nothing outside numpy and the standard library.
"""
