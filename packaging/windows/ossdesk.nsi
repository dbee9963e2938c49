; ossdesk for Windows: a per-user installer (no administrator rights needed).
;
; Built by packaging/windows/make_installer.py, which passes:
;   /DVERSION=0.1.0          version from pyproject.toml
;   /DVERSION_QUAD=0.1.0.0   the same as four numbers (Windows version resources)
;   /DSOURCE_DIR=...         the PyInstaller folder dist\ossdesk (ossdesk.exe, ossdeskw.exe, _internal)
;   /DOUTFILE=...            the setup program to write
;   /DICON=...               optional: the .ico of the installer and uninstaller
;   /DFAST_COMPRESSION       optional: zlib instead of solid LZMA (a quick check, not a release)
;   /DTARGET_AMD64           optional: a 64-bit setup program instead of the usual 32-bit one
;   /DSIGN_COMMAND=...       optional: a command that signs the file given as %1 (signtool ...):
;                            applied to the installer and to the uninstaller it carries
;
; What it does:
;   - installs into %LOCALAPPDATA%\Programs\ossdesk (or a folder the user picks);
;   - Start menu shortcut; optional desktop shortcut;
;   - optional Explorer integration: "Upload with ossdesk" on files and folders
;     (HKCU\Software\Classes\*\shell and Directory\shell) and ossdesk in "Send to";
;   - registers the uninstaller under HKCU\...\Uninstall (Settings > Apps);
;   - the uninstaller keeps the user's upload list, checkpoints and settings unless the user
;     ticks "Remove my upload list, checkpoints and settings" (silently: /S /REMOVEDATA).

!ifdef TARGET_AMD64
  Target amd64-unicode            ; a 64-bit setup program (tests under Wine64); releases use x86
!else
  Unicode true
!endif
ManifestDPIAware true
RequestExecutionLevel user
!ifdef FAST_COMPRESSION
  SetCompressor zlib              ; quick check builds (make_installer.py --fast), not releases
!else
  SetCompressor /SOLID lzma
  SetCompressorDictSize 64
!endif

!ifndef VERSION
  !error "VERSION is not defined: build with packaging/windows/make_installer.py"
!endif
!ifndef VERSION_QUAD
  !error "VERSION_QUAD is not defined: build with packaging/windows/make_installer.py"
!endif
!ifndef SOURCE_DIR
  !error "SOURCE_DIR is not defined: build with packaging/windows/make_installer.py"
!endif
!ifndef OUTFILE
  !define OUTFILE "ossdesk-${VERSION}-windows-x86_64-setup.exe"
!endif

!ifdef SIGN_COMMAND
  !finalize '${SIGN_COMMAND}'
  !uninstfinalize '${SIGN_COMMAND}'
!endif

!define APP_NAME "ossdesk"
!define PUBLISHER "ossdesk developers"
!define APP_EXE "ossdeskw.exe"          ; windowed: shortcuts, Explorer, Send To
!define CLI_EXE "ossdesk.exe"           ; console: terminals and scripts
!define UNINSTALL_EXE "uninstall.exe"
!define REG_APP "Software\${APP_NAME}"
!define REG_UNINSTALL "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_NAME}"
!define REG_APP_PATHS "Software\Microsoft\Windows\CurrentVersion\App Paths\${CLI_EXE}"
!define REG_VERB_FILES "Software\Classes\*\shell\${APP_NAME}.upload"
!define REG_VERB_FOLDERS "Software\Classes\Directory\shell\${APP_NAME}.upload"
; platformdirs' user data, config, log and cache folders of ossdesk on Windows all live here.
!define USER_DATA "$LOCALAPPDATA\${APP_NAME}\${APP_NAME}"

Name "${APP_NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${REG_APP}" "InstallDir"
BrandingText "${APP_NAME} ${VERSION}"
ShowInstDetails hide
ShowUninstDetails hide

VIProductVersion "${VERSION_QUAD}"
VIFileVersion "${VERSION_QUAD}"
VIAddVersionKey /LANG=0 "ProductName" "${APP_NAME}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "FileDescription" "${APP_NAME} ${VERSION} setup"
VIAddVersionKey /LANG=0 "CompanyName" "${PUBLISHER}"
VIAddVersionKey /LANG=0 "LegalCopyright" "Apache License 2.0"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"
!include "Sections.nsh"
!include "x64.nsh"
!include "Integration.nsh"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_SMALLDESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "$(STR_RUN)"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

; The installer speaks the user's Windows language when it is one of these.
!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"

LangString STR_SEC_APP ${LANG_ENGLISH} "ossdesk (required)"
LangString STR_SEC_APP ${LANG_SIMPCHINESE} "ossdesk（必需）"
LangString STR_SEC_APP_DESC ${LANG_ENGLISH} "The ossdesk program and its Start menu shortcut."
LangString STR_SEC_APP_DESC ${LANG_SIMPCHINESE} "ossdesk 程序及其“开始”菜单快捷方式。"
LangString STR_SEC_DESKTOP ${LANG_ENGLISH} "Desktop shortcut"
LangString STR_SEC_DESKTOP ${LANG_SIMPCHINESE} "桌面快捷方式"
LangString STR_SEC_DESKTOP_DESC ${LANG_ENGLISH} "An ossdesk icon on the desktop."
LangString STR_SEC_DESKTOP_DESC ${LANG_SIMPCHINESE} "在桌面上放置 ossdesk 图标。"
LangString STR_SEC_EXPLORER ${LANG_ENGLISH} "Upload from Explorer"
LangString STR_SEC_EXPLORER ${LANG_SIMPCHINESE} "从资源管理器上传"
LangString STR_SEC_EXPLORER_DESC ${LANG_ENGLISH} "$\"Upload with ossdesk$\" when you right-click files and folders, and ossdesk in $\"Send to$\"."
LangString STR_SEC_EXPLORER_DESC ${LANG_SIMPCHINESE} "右键单击文件和文件夹时显示“使用 ossdesk 上传”，并在“发送到”中加入 ossdesk。"
LangString STR_VERB ${LANG_ENGLISH} "Upload with ossdesk"
LangString STR_VERB ${LANG_SIMPCHINESE} "使用 ossdesk 上传"
LangString STR_RUN ${LANG_ENGLISH} "Start ossdesk"
LangString STR_RUN ${LANG_SIMPCHINESE} "启动 ossdesk"
LangString STR_NEEDS_X64 ${LANG_ENGLISH} "ossdesk needs a 64-bit version of Windows."
LangString STR_NEEDS_X64 ${LANG_SIMPCHINESE} "ossdesk 需要 64 位 Windows。"
LangString STR_UN_APP ${LANG_ENGLISH} "ossdesk"
LangString STR_UN_APP ${LANG_SIMPCHINESE} "ossdesk"
LangString STR_UN_APP_DESC ${LANG_ENGLISH} "The program, its shortcuts and its Explorer entries. Your upload list and settings are kept, so a later install continues where you left off."
LangString STR_UN_APP_DESC ${LANG_SIMPCHINESE} "程序、快捷方式和资源管理器菜单项。上传列表和设置会保留，重新安装后可以从中断处继续。"
LangString STR_UN_DATA ${LANG_ENGLISH} "Remove my upload list, checkpoints and settings"
LangString STR_UN_DATA ${LANG_SIMPCHINESE} "删除我的上传列表、断点记录和设置"
LangString STR_UN_DATA_DESC ${LANG_ENGLISH} "Deletes ${USER_DATA}: unfinished uploads can then no longer be resumed. Saved secrets stay in Windows Credential Manager: remove the accounts in ossdesk first to delete them."
LangString STR_UN_DATA_DESC ${LANG_SIMPCHINESE} "删除 ${USER_DATA}：未完成的上传将无法继续。已保存的密钥仍在 Windows 凭据管理器中：请先在 ossdesk 中删除账户。"

; --- install -------------------------------------------------------------------------------

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP|MB_OK "$(STR_NEEDS_X64)" /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext current
FunctionEnd

Section "$(STR_SEC_APP)" SEC_APP
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; An update replaces the bundled libraries whole, so no file of an older version lingers.
  RMDir /r "$INSTDIR\_internal"
  File /r "${SOURCE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\${UNINSTALL_EXE}"

  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0

  WriteRegStr HKCU "${REG_APP}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${REG_APP}" "Version" "${VERSION}"
  ; "ossdesk" in the Run dialog and in terminals that honour App Paths.
  WriteRegStr HKCU "${REG_APP_PATHS}" "" "$INSTDIR\${CLI_EXE}"
  WriteRegStr HKCU "${REG_APP_PATHS}" "Path" "$INSTDIR"

  WriteRegStr HKCU "${REG_UNINSTALL}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${REG_UNINSTALL}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${REG_UNINSTALL}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${REG_UNINSTALL}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${REG_UNINSTALL}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${REG_UNINSTALL}" "UninstallString" '"$INSTDIR\${UNINSTALL_EXE}"'
  WriteRegStr HKCU "${REG_UNINSTALL}" "QuietUninstallString" '"$INSTDIR\${UNINSTALL_EXE}" /S'
  WriteRegDWORD HKCU "${REG_UNINSTALL}" "NoModify" 1
  WriteRegDWORD HKCU "${REG_UNINSTALL}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${REG_UNINSTALL}" "EstimatedSize" "$0"
SectionEnd

Section "$(STR_SEC_DESKTOP)" SEC_DESKTOP
  CreateShortCut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
SectionEnd

Section "$(STR_SEC_EXPLORER)" SEC_EXPLORER
  ; Right-click on files and on folders. Each chosen item starts "ossdeskw.exe PATH"; the
  ; window adds it to the queue of the ossdesk that is already open.
  WriteRegStr HKCU "${REG_VERB_FILES}" "" "$(STR_VERB)"
  WriteRegStr HKCU "${REG_VERB_FILES}" "Icon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${REG_VERB_FILES}\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  WriteRegStr HKCU "${REG_VERB_FOLDERS}" "" "$(STR_VERB)"
  WriteRegStr HKCU "${REG_VERB_FOLDERS}" "Icon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${REG_VERB_FOLDERS}\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  ; Send to > ossdesk: every selected item arrives as one argument of a single start.
  CreateShortCut "$SENDTO\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
  WriteRegDWORD HKCU "${REG_APP}" "ExplorerIntegration" 1
  ${NotifyShell_AssocChanged}
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SEC_APP} "$(STR_SEC_APP_DESC)"
  !insertmacro MUI_DESCRIPTION_TEXT ${SEC_DESKTOP} "$(STR_SEC_DESKTOP_DESC)"
  !insertmacro MUI_DESCRIPTION_TEXT ${SEC_EXPLORER} "$(STR_SEC_EXPLORER_DESC)"
!insertmacro MUI_FUNCTION_DESCRIPTION_END

; --- uninstall -----------------------------------------------------------------------------

Section "un.$(STR_UN_APP)" UNSEC_APP
  SectionIn RO
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  Delete "$SENDTO\${APP_NAME}.lnk"
  DeleteRegKey HKCU "${REG_VERB_FILES}"
  DeleteRegKey HKCU "${REG_VERB_FOLDERS}"
  DeleteRegKey HKCU "${REG_APP_PATHS}"
  DeleteRegKey HKCU "${REG_UNINSTALL}"
  DeleteRegKey HKCU "${REG_APP}"
  ${NotifyShell_AssocChanged}

  ; Only what the installer put there: the folder may have been chosen by hand and hold
  ; other files.
  ${If} ${FileExists} "$INSTDIR\${CLI_EXE}"
    RMDir /r "$INSTDIR\_internal"
    Delete "$INSTDIR\${APP_EXE}"
    Delete "$INSTDIR\${CLI_EXE}"
  ${EndIf}
  Delete "$INSTDIR\${UNINSTALL_EXE}"
  RMDir "$INSTDIR"
SectionEnd

Section /o "un.$(STR_UN_DATA)" UNSEC_DATA
  RMDir /r "${USER_DATA}"
  RMDir "$LOCALAPPDATA\${APP_NAME}"
SectionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext current
  ; "uninstall.exe /S /REMOVEDATA" also removes the user's data (for scripted uninstalls).
  ${un.GetParameters} $R0
  ClearErrors
  ${un.GetOptions} $R0 "/REMOVEDATA" $R1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${UNSEC_DATA}
  ${EndIf}
FunctionEnd

!insertmacro MUI_UNFUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${UNSEC_APP} "$(STR_UN_APP_DESC)"
  !insertmacro MUI_DESCRIPTION_TEXT ${UNSEC_DATA} "$(STR_UN_DATA_DESC)"
!insertmacro MUI_UNFUNCTION_DESCRIPTION_END
