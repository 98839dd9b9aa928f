"""MS-CAM Explainer: a QGIS plugin that explains a CNN's decisions on SAR scenes with MS-CAM.

A thin adapter over the engine `mscam`: a Processing provider (`mscam:explain`, `mscam:localize`,
`mscam:evaluate`, `mscam:synthesize`), an analyst's dock, styling of the results and a dependency
check. Nothing here imports torch until an algorithm runs, so the plugin loads without it and says
what to install.
"""


def classFactory(iface):  # QGIS's entry point; iface is None under qgis_process
    from .dependencies import prepare_sys_path

    prepare_sys_path()
    from .plugin import MscamPlugin

    return MscamPlugin(iface)
