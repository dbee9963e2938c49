#!/usr/bin/env bash
# Try the Windows installer's logic under Wine64 (Linux): install silently, check the files,
# shortcuts and registry keys, uninstall and check that the user's data is kept, reinstall,
# uninstall with /REMOVEDATA and check that it is gone, and that an update into a folder the
# user chose keeps that folder and replaces _internal whole.
#
#   bash packaging/windows/wine_check.sh          (needs makensis and wine64: apt-get install nsis wine64)
#
# It builds a small 64-bit installer (the release one is 32-bit: same script, another stub)
# around a stand-in program folder, in a throwaway Wine prefix and HOME, with Wine's menu
# integration switched off, so nothing outside a temporary folder is touched.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
WINE=${WINE:-$(command -v wine64 || echo /usr/lib/wine/wine64)}
[[ -x "$WINE" ]] || { echo "wine_check.sh: wine64 not found (apt-get install wine64)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ossdesk-wine.XXXXXX")
export HOME="$WORK/home" WINEPREFIX="$WORK/prefix" WINEDEBUG=-all
export WINEDLLOVERRIDES="winemenubuilder.exe=d;mscoree=;mshtml="
mkdir -p "$HOME"
cleanup() {
  "$(dirname "$WINE")/wineserver" -k >/dev/null 2>&1 || wineserver -k >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "wine_check: FAILED: $*" >&2; exit 1; }
win() { timeout 180 "$WINE" "$@"; }
has_key() { win reg query "$1" >/dev/null 2>&1; }

LAYOUT="$WORK/layout/ossdesk"
mkdir -p "$LAYOUT/_internal"
echo "stand-in" > "$LAYOUT/ossdesk.exe"
echo "stand-in" > "$LAYOUT/ossdeskw.exe"
echo "library" > "$LAYOUT/_internal/library.txt"
SETUP="$WORK/ossdesk-wine-check-setup.exe"
"$PYTHON" "$REPO/packaging/windows/make_installer.py" --fast --amd64 --source "$LAYOUT" \
  --out "$SETUP" >/dev/null

win wineboot -i >/dev/null 2>&1
USERDIR="$WINEPREFIX/drive_c/users/$(whoami)"
INST="$USERDIR/AppData/Local/Programs/ossdesk"
DATA="$USERDIR/AppData/Local/ossdesk/ossdesk"
INST_WIN="C:\\users\\$(whoami)\\AppData\\Local\\Programs\\ossdesk"
UNINSTALL_KEY='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\ossdesk'
VERB_KEY='HKCU\Software\Classes\*\shell\ossdesk.upload\command'
FOLDER_VERB_KEY='HKCU\Software\Classes\Directory\shell\ossdesk.upload\command'
SENDTO="$USERDIR/AppData/Roaming/Microsoft/Windows/SendTo/ossdesk.lnk"
STARTMENU="$USERDIR/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/ossdesk.lnk"

# 1. A default silent install.
win "$SETUP" /S
for f in ossdesk.exe ossdeskw.exe uninstall.exe _internal/library.txt; do
  [[ -e "$INST/$f" ]] || fail "no $f in $INST"
done
[[ -e "$SENDTO" ]] || fail "no Send To shortcut"
[[ -e "$STARTMENU" ]] || fail "no Start menu shortcut"
has_key "$UNINSTALL_KEY" || fail "no Uninstall entry"
win reg query "$UNINSTALL_KEY" /v DisplayVersion | grep -q "$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("'"$REPO"'/pyproject.toml", "rb"))["project"]["version"])')" \
  || fail "wrong DisplayVersion"
win reg query "$UNINSTALL_KEY" /v QuietUninstallString | grep -q 'uninstall.exe" /S' || fail "no QuietUninstallString"
win reg query "$VERB_KEY" | grep -q 'ossdeskw.exe" "%1"' || fail "no Explorer verb for files"
has_key "$FOLDER_VERB_KEY" || fail "no Explorer verb for folders"
echo "install: files, Start menu, Send To, Uninstall entry and Explorer verbs are there"

# 2. The default uninstall keeps the user's upload list.
mkdir -p "$DATA"
echo "checkpoints" > "$DATA/ossdesk.sqlite3"
win "$INST/uninstall.exe" /S "_?=$INST_WIN"
[[ ! -e "$INST/_internal" && ! -e "$INST/ossdesk.exe" ]] || fail "the program is still there"
[[ ! -e "$SENDTO" && ! -e "$STARTMENU" ]] || fail "shortcuts are still there"
! has_key "$UNINSTALL_KEY" || fail "the Uninstall entry is still there"
! has_key "$VERB_KEY" || fail "the Explorer verb is still there"
[[ -f "$DATA/ossdesk.sqlite3" ]] || fail "the user's upload list was removed"
rm -f "$INST/uninstall.exe"  # left by the _?= (wait) mode, by design
echo "uninstall: program, shortcuts and keys gone, the user's data kept"

# 3. /REMOVEDATA removes the user's data too.
win "$SETUP" /S
win "$INST/uninstall.exe" /S /REMOVEDATA "_?=$INST_WIN"
[[ ! -e "$USERDIR/AppData/Local/ossdesk" ]] || fail "/REMOVEDATA left the user's data"
rm -f "$INST/uninstall.exe"
echo "uninstall /REMOVEDATA: the user's data gone"

# 4. A folder chosen by the user: its other files stay; an update goes there and replaces
#    _internal whole.
CHOSEN="$USERDIR/tools"
mkdir -p "$CHOSEN"
echo "mine" > "$CHOSEN/notes.txt"
win "$SETUP" /S "/D=C:\\users\\$(whoami)\\tools"
[[ -e "$CHOSEN/ossdesk.exe" ]] || fail "/D= was not honoured"
echo "stale" > "$CHOSEN/_internal/from-an-older-version.txt"
win "$SETUP" /S
[[ -e "$CHOSEN/ossdesk.exe" && ! -e "$INST/ossdesk.exe" ]] || fail "the update did not go to the chosen folder"
[[ ! -e "$CHOSEN/_internal/from-an-older-version.txt" ]] || fail "an old file survived the update"
win "$CHOSEN/uninstall.exe" /S "_?=C:\\users\\$(whoami)\\tools"
[[ -f "$CHOSEN/notes.txt" && ! -e "$CHOSEN/_internal" ]] || fail "uninstall removed too much or too little"
echo "chosen folder: update in place, the user's own files kept"
echo "wine check passed"
