"""The plugin object QGIS loads: registers the Processing provider, adds the dock and the menu."""

from __future__ import annotations

import sys

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon

try:
    from qgis.PyQt.QtGui import QAction  # Qt 6 (QGIS 4) moved QAction to QtGui
except ImportError:
    from qgis.PyQt.QtWidgets import QAction

from .algorithms.base import ICON
from .provider import MscamProvider

MENU = "&MS-CAM"


class MscamPlugin:
    """`initProcessing` alone under qgis_process (iface is None); `initGui` in QGIS desktop."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: MscamProvider | None = None
        self.dock = None
        self.actions: list[QAction] = []

    def initProcessing(self) -> None:
        if self.provider is None:
            self.provider = MscamProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()
        if self.iface is None:
            return
        window = self.iface.mainWindow()
        dock_action = QAction(QIcon(str(ICON)), "MS-CAM Explainer", window)
        dock_action.setCheckable(True)
        dock_action.setToolTip("Explain a CNN's detections on the active SAR raster (MS-CAM)")
        dock_action.toggled.connect(self.show_dock)
        about_action = QAction("About MS-CAM and its dependencies…", window)
        about_action.triggered.connect(self.show_about)
        self.actions = [dock_action, about_action]
        for action in self.actions:
            self.iface.addPluginToRasterMenu(MENU, action)
        self.iface.addToolBarIcon(dock_action)

    def show_dock(self, visible: bool = True) -> None:
        if self.dock is None:
            from .dock import MscamDock

            self.dock = MscamDock(self.iface, self.iface.mainWindow())
            self.dock.visibilityChanged.connect(self.actions[0].setChecked)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.setVisible(visible)

    def show_about(self) -> None:
        from .about import AboutDialog

        AboutDialog(self.iface.mainWindow()).exec()

    def unload(self) -> None:
        # Windows explained in this process keep a job (model, open GDAL datasets) cached: drop
        # it before QGIS tears GDAL down at exit.
        pipeline = sys.modules.get("mscam.scene.pipeline")
        if pipeline is not None:
            pipeline.release_cached_jobs()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.iface is None:
            return
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
            self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.dock is not None:
            self.dock.close_tools()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
