"""Settings: limits, part size, bandwidth, auto-resume, language, theme."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ossdesk.ui.settings import Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle(self.tr("Settings"))
        self._original = settings

        # Transfers.
        self.files_at_once = QSpinBox()
        self.files_at_once.setObjectName("filesAtOnce")
        self.files_at_once.setRange(1, 16)
        self.parts_in_flight = QSpinBox()
        self.parts_in_flight.setObjectName("partsInFlight")
        self.parts_in_flight.setRange(1, 64)
        self.part_auto = QRadioButton(self.tr("Automatic (chosen per file)"))
        self.part_auto.setObjectName("partAuto")
        self.part_fixed = QRadioButton(self.tr("Fixed:"))
        self.part_fixed.setObjectName("partFixed")
        self.part_size = QSpinBox()
        self.part_size.setObjectName("partSize")
        self.part_size.setRange(1, 5 * 1024)
        self.part_size.setSuffix(" MiB")
        self.part_fixed.toggled.connect(self.part_size.setEnabled)
        fixed_row = QHBoxLayout()
        fixed_row.addWidget(self.part_fixed)
        fixed_row.addWidget(self.part_size)
        fixed_row.addStretch(1)
        part_row = QVBoxLayout()
        part_row.addWidget(self.part_auto)
        part_row.addLayout(fixed_row)
        self.bandwidth = QSpinBox()
        self.bandwidth.setObjectName("bandwidth")
        self.bandwidth.setRange(0, 10_000_000)
        self.bandwidth.setSingleStep(256)
        self.bandwidth.setSuffix(
            " " + QCoreApplication.translate("Format", "%1/s").replace("%1", "KiB"))
        self.bandwidth.setSpecialValueText(self.tr("Unlimited"))
        for spin in (self.files_at_once, self.parts_in_flight, self.bandwidth):
            spin.setMaximumWidth(180)
        self.reread_limit = QSpinBox()
        self.reread_limit.setObjectName("rereadLimit")
        self.reread_limit.setRange(0, 1024 * 1024)
        self.reread_limit.setSuffix(" GiB")
        self.reread_limit.setSpecialValueText(self.tr("Never (every file is read again)"))
        self.reread_limit.setMaximumWidth(260)
        self.reread_limit.setToolTip(
            self.tr(
                "Before a file is called verified, ossdesk reads it again and compares its "
                "CRC-64 with what was sent, so a file rewritten during the upload is never "
                "published as a mix of old and new content. Files larger than this are not "
                "read again: faster for very large files on slow disks, but a change that "
                "keeps the file's size, times and identity would go unnoticed."
            )
        )
        self.auto_resume = QCheckBox(self.tr("Resume unfinished uploads when ossdesk starts"))
        self.auto_resume.setObjectName("autoResume")

        transfers = QGroupBox(self.tr("Transfers"))
        form = QFormLayout(transfers)
        form.addRow(self.tr("Files at once:"), self.files_at_once)
        form.addRow(self.tr("Parts in flight (all files):"), self.parts_in_flight)
        form.addRow(self.tr("Part size:"), part_row)
        form.addRow(self.tr("Bandwidth limit:"), self.bandwidth)
        form.addRow(self.tr("Skip the re-read above:"), self.reread_limit)
        form.addRow("", self.auto_resume)
        hint = QLabel(
            self.tr(
                "More parts in flight use a fast connection better; a bandwidth limit keeps "
                "the connection usable for other programs. Large files need parts of at "
                "least size/10,000, so a fixed size may be raised for them."
            )
        )
        hint.setWordWrap(True)
        hint.setObjectName("transfersHint")
        form.addRow(hint)

        # Appearance.
        self.language = QComboBox()
        self.language.setObjectName("language")
        self.language.addItem(self.tr("Same as the system"), "system")
        self.language.addItem("English", "en")
        self.language.addItem("简体中文", "zh_CN")
        appearance = QGroupBox(self.tr("Appearance"))
        form2 = QFormLayout(appearance)
        form2.addRow(self.tr("Language:"), self.language)
        theme = QLabel(self.tr("Light or dark: follows the system setting."))
        theme.setWordWrap(True)
        form2.addRow(self.tr("Theme:"), theme)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(self.tr("OK"))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(self.tr("Cancel"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(transfers)
        layout.addWidget(appearance)
        layout.addWidget(buttons)
        self.setMinimumWidth(600)
        self.load(settings)

    def load(self, settings: Settings) -> None:
        self.files_at_once.setValue(settings.files_at_once)
        self.parts_in_flight.setValue(settings.parts_in_flight)
        fixed = settings.part_size_mib > 0
        self.part_fixed.setChecked(fixed)
        self.part_auto.setChecked(not fixed)
        self.part_size.setValue(settings.part_size_mib if fixed else 10)
        self.part_size.setEnabled(fixed)
        self.bandwidth.setValue(settings.bandwidth_limit_kib)
        self.reread_limit.setValue(settings.reread_limit_gib)
        self.auto_resume.setChecked(settings.auto_resume)
        index = self.language.findData(settings.language)
        self.language.setCurrentIndex(max(index, 0))

    def result_settings(self) -> Settings:
        return replace(
            self._original,
            files_at_once=self.files_at_once.value(),
            parts_in_flight=self.parts_in_flight.value(),
            part_size_mib=self.part_size.value() if self.part_fixed.isChecked() else 0,
            bandwidth_limit_kib=self.bandwidth.value(),
            reread_limit_gib=self.reread_limit.value(),
            auto_resume=self.auto_resume.isChecked(),
            language=str(self.language.currentData()),
        ).normalised()
