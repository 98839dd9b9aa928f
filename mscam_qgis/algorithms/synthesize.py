"""`mscam:synthesize`: a synthetic Sentinel-1-like scene with its ship truth."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
)

from ..compat import NUMBER_INTEGER, VECTOR_POLYGON
from ..styling import ResultStyler
from .base import PROFILE_NAMES, MscamAlgorithm, engine_errors, tr

HELP = """Makes a synthetic Sentinel-1 IW GRD-like dual-polarisation scene (VV and VH in dB, \
10 m pixels, UTM 33N) with known ships and hard negatives (platforms, wind turbines, buoys, \
azimuth ghosts, islands, towns), and writes the ships as ground-truth boxes. The same profile, \
size and seed always give the same scene.

<b>Profile</b>: calm (low wind), rough (high wind, textured sea), coastal (land, port, islands, \
wind farm), empty (no ships: every detection is false), dense (many ships, a shipping lane).
<b>Size</b>: side of the square scene in pixels (32–20000).
<b>Seed</b>: random seed.
<b>Scene</b>: the GeoTIFF written. <b>Ground truth</b>: the ship boxes (GeoPackage)."""


class SynthesizeAlgorithm(MscamAlgorithm):
    NAME = "synthesize"
    DISPLAY = "Synthesize a SAR scene with ground truth"
    GROUP = "Data"
    HELP = HELP

    SHORT = "A synthetic SAR scene (VV, VH dB) with ships and their ground-truth boxes"
    KEYWORDS = ("synthetic", "simulate", "scene", "ground truth", "test data")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(
            QgsProcessingParameterEnum(
                "PROFILE",
                tr("Profile"),
                options=list(PROFILE_NAMES),
                defaultValue="coastal",
                usesStaticStrings=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SIZE",
                tr("Size in pixels"),
                type=NUMBER_INTEGER,
                defaultValue=1024,
                minValue=32,
                maxValue=20000,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED",
                tr("Seed"),
                type=NUMBER_INTEGER,
                defaultValue=0,
                minValue=0,
            )
        )
        scene = QgsProcessingParameterRasterDestination("OUTPUT", tr("Scene"))
        scene.setSupportsNonFileBasedOutput(False)
        self.addParameter(scene)
        truth = QgsProcessingParameterVectorDestination(
            "TRUTH",
            tr("Ground truth"),
            type=VECTOR_POLYGON,
        )
        truth.setSupportsNonFileBasedOutput(False)
        self.addParameter(truth)

    def processAlgorithm(self, parameters, context, feedback):
        profile = self.parameterAsEnumString(parameters, "PROFILE", context)
        size = self.parameterAsInt(parameters, "SIZE", context)
        seed = self.parameterAsInt(parameters, "SEED", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        truth = self.parameterAsOutputLayer(parameters, "TRUTH", context)
        with engine_errors():
            from mscam.sar.synth import synthesize_scene
            from mscam.sar.synth_io import write_scene

            feedback.setProgressText(tr(f"synthesizing a {profile} scene of {size}² pixels"))
            scene = synthesize_scene(size, profile, seed)
            if feedback.isCanceled():
                raise QgsProcessingException(tr("Cancelled: nothing was written."))
            feedback.setProgress(80)
            write_scene(scene, output, truth)
        feedback.setProgress(100)
        feedback.pushInfo(f"{len(scene.ships)} ships, {len(scene.hard_negatives)} hard negatives")
        group = f"MS-CAM synthetic {profile} · seed {seed}"
        ResultStyler.attach(context, output, "scene", tr(f"{profile} scene (VV, VH dB)"), group)
        ResultStyler.attach(context, truth, "truth", tr("ships (truth)"), group)
        return {"OUTPUT": output, "TRUTH": truth}
