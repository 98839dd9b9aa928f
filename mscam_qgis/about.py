"""About and diagnostics: versions, device, where things come from; installs PyTorch on request."""

from __future__ import annotations

import subprocess

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from .compat import TASK_CAN_CANCEL
from .dependencies import diagnostics, engine_status, install_command, prepare_sys_path


class InstallTask(QgsTask):
    """Runs the pip command of `install_command()` in the background, logging its output."""

    def __init__(self, command: list[str]) -> None:
        super().__init__("Installing PyTorch for MS-CAM", TASK_CAN_CANCEL)
        self.command = command
        self.output = ""

    def run(self) -> bool:
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
        done = subprocess.run(
            self.command, capture_output=True, text=True, check=False, creationflags=flags
        )
        self.output = done.stdout[-4000:] + done.stderr[-4000:]
        QgsMessageLog.logMessage(
            self.output,
            "MS-CAM",
            Qgis.MessageLevel.Info if done.returncode == 0 else Qgis.MessageLevel.Critical,
        )
        return done.returncode == 0


class AboutDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About MS-CAM")
        self.resize(640, 360)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "<b>MS-CAM Explainer</b>: where does the CNN see a ship in this SAR scene, "
                "and why? Multi-weight self-matching class activation maps (Sun et al. 2025) "
                "and baselines."
            )
        )
        self.report = QPlainTextEdit(readOnly=True)
        layout.addWidget(self.report)
        self.install_button = QPushButton("Install PyTorch")
        self.install_button.clicked.connect(self.install)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.install_button, QDialogButtonBox.ButtonRole.ActionRole)
        copy = buttons.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QApplication.clipboard().setText(self.report.toPlainText()))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.task: InstallTask | None = None
        self.refresh()

    def refresh(self) -> None:
        status = engine_status()
        self.report.setPlainText(diagnostics(status))
        self.install_button.setVisible(status.torch_version is None)

    def install(self) -> None:
        command = install_command()
        self.report.appendPlainText("\nRunning: " + " ".join(command) + "\n(this takes minutes)")
        self.install_button.setEnabled(False)
        self.task = InstallTask(command)
        self.task.taskCompleted.connect(self._installed)
        self.task.taskTerminated.connect(self._installed)
        QgsApplication.taskManager().addTask(self.task)

    def _installed(self) -> None:
        prepare_sys_path()
        self.refresh()
        self.report.appendPlainText("\n" + (self.task.output if self.task else ""))
        self.install_button.setEnabled(True)
