#!/usr/bin/env bash
# Build the Linux bundle of ossdesk from a fresh clone, smoke-test it, and check the Windows
# installer script with makensis. One command, from the repository:
#
#   bash packaging/build_linux.sh                 # fresh clone of the committed HEAD
#   bash packaging/build_linux.sh --worktree      # the working tree as it is (uncommitted too)
#
# Options:
#   --worktree        build the files of this working tree (tracked and untracked, not ignored)
#   --nsis MODE       fast (default: zlib, ~1 min), full (solid LZMA as released, ~3 min), skip
#   --wine            also try the installer's logic under Wine64 (installs wine64, ~650 MB;
#                     packaging/windows/wine_check.sh, ~15 s)
#   --keep            keep the temporary folder (the clone, the staging, the unpacked tarball)
#
# Output in dist/ (of this repository):
#   dist/ossdesk/                                  the onedir bundle (run dist/ossdesk/ossdesk)
#   dist/ossdesk-VERSION-linux-x86_64.tar.gz       the bundle + ossdesk.desktop + icons + install.sh
#   dist/build-linux-report.txt                    sizes, times, start-up time, smoke test output
#   dist/gui-smoke.png                             the frozen app's window on Xvfb (xcb plugin)
#
# Installs what it needs: Debian packages with apt-get (the X11/xcb libraries Qt's platform
# plugin links to, so they are bundled; binutils; nsis), and a build virtual environment in
# build/linux-venv with ossdesk and PyInstaller (the repository's .venv is never touched).
# Fails if the smoke test fails or the frozen app writes anything unexpected to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MODE=clone
NSIS=fast
KEEP=0
WINE_CHECK=0
while (($#)); do
  case "$1" in
    --worktree) MODE=worktree ;;
    --nsis) NSIS=${2:?--nsis needs fast, full or skip}; shift ;;
    --keep) KEEP=1 ;;
    --wine) WINE_CHECK=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build_linux.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case "$NSIS" in fast|full|skip) ;; *) echo "--nsis: fast, full or skip" >&2; exit 2 ;; esac

T0=$(date +%s)
step_start=$T0
declare -a TIMES=()
step() {  # step NAME: close the previous step's timer, announce the next
  local now; now=$(date +%s)
  if [[ -n "${STEP_NAME:-}" ]]; then TIMES+=("$(printf '%-36s %4d s' "$STEP_NAME" $((now - step_start)))"); fi
  STEP_NAME=$1; step_start=$now
  [[ -n "$1" ]] && echo "== $1"
  return 0
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ossdesk-build.XXXXXX")
cleanup() { if ((KEEP)); then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# --- Debian packages ----------------------------------------------------------------------
step "Debian packages"
DEB_PACKAGES=(
  binutils  # objdump/strip for PyInstaller
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libglib2.0-0 libdbus-1-3
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
  libxcb-image0 libxcb-xkb1 libxcb-xinerama0
  desktop-file-utils xvfb
)
if [[ "$NSIS" != skip || "$WINE_CHECK" == 1 ]]; then DEB_PACKAGES+=(nsis); fi
if [[ "$WINE_CHECK" == 1 ]]; then DEB_PACKAGES+=(wine64); fi
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# --- the sources --------------------------------------------------------------------------
SRC="$WORK/src"
if [[ "$MODE" == clone ]]; then
  step "fresh clone"
  git clone --quiet --no-hardlinks "$REPO" "$SRC"
  echo "commit $(git -C "$SRC" rev-parse --short HEAD)"
else
  step "copy of the working tree"
  mkdir -p "$SRC"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do if [[ -e "$file" ]]; then printf '%s\0' "$file"; fi; done \
    | tar --null -T - -cf -) | tar -C "$SRC" -xf -
fi
[[ -f "$SRC/packaging/ossdesk.spec" ]] || {
  echo "build_linux.sh: $SRC has no packaging/ossdesk.spec (not committed yet? try --worktree)" >&2
  exit 1
}
VERSION=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$SRC/pyproject.toml")
ARCH=$(uname -m)
NAME="ossdesk-$VERSION-linux-$ARCH"
echo "ossdesk $VERSION, $ARCH"

# --- build environment --------------------------------------------------------------------
step "build venv (ossdesk + PyInstaller)"
VENV="$REPO/build/linux-venv"
PYTHON=${PYTHON:-python3}
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {  # pip, without the notices about package index folders this machine lacks
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}
pip_install --upgrade pip >/dev/null
# A regular (not editable) install: the bundle takes ossdesk's metadata from it.
pip_install --force-reinstall --no-deps "$SRC"
pip_install "${SRC}[packaging]"

# --- PyInstaller --------------------------------------------------------------------------
step "PyInstaller"
(cd "$SRC" && "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath "$SRC/dist" --workpath "$SRC/build/pyinstaller" packaging/ossdesk.spec)
BUNDLE="$SRC/dist/ossdesk"
[[ -x "$BUNDLE/ossdesk" ]] || { echo "no bundle in $BUNDLE" >&2; exit 1; }

# --- the tarball --------------------------------------------------------------------------
step "tarball"
STAGE="$WORK/stage/$NAME"
mkdir -p "$STAGE"
cp -a "$BUNDLE/." "$STAGE/"
cp "$SRC/packaging/linux/ossdesk.desktop" "$SRC/packaging/linux/install.sh" "$STAGE/"
chmod +x "$STAGE/install.sh"
desktop-file-validate "$STAGE/ossdesk.desktop"
ICONS="$SRC/resources/icons"
for png in "$ICONS"/ossdesk-*.png; do
  [[ -e "$png" ]] || continue
  size=$(basename "$png" .png); size=${size#ossdesk-}
  mkdir -p "$STAGE/icons/hicolor/${size}x${size}/apps"
  cp "$png" "$STAGE/icons/hicolor/${size}x${size}/apps/ossdesk.png"
done
if [[ -f "$ICONS/ossdesk.svg" ]]; then
  mkdir -p "$STAGE/icons/hicolor/scalable/apps"
  cp "$ICONS/ossdesk.svg" "$STAGE/icons/hicolor/scalable/apps/ossdesk.svg"
fi
for size in 256 128 512 64; do
  if [[ -f "$ICONS/ossdesk-$size.png" ]]; then cp "$ICONS/ossdesk-$size.png" "$STAGE/ossdesk.png"; break; fi
done
TARBALL="$WORK/$NAME.tar.gz"
tar -C "$WORK/stage" --owner=0 --group=0 -czf "$TARBALL" "$NAME"

# --- smoke test of the unpacked tarball ---------------------------------------------------
step "smoke test"
mkdir -p "$WORK/unpacked"
tar -C "$WORK/unpacked" -xzf "$TARBALL"
APP="$WORK/unpacked/$NAME/ossdesk"
SMOKE_LOG="$WORK/smoke.txt"
(cd "$WORK" && "$VENV/bin/python" "$SRC/packaging/smoke_test.py" "$APP") | tee "$SMOKE_LOG"

step "window under Xvfb"
# `ossdesk --sandbox` opens the window on a ready sandbox account (see packaging/gui_smoke.py).
gui_status=0
"$VENV/bin/python" "$SRC/packaging/gui_smoke.py" --seconds 8 --screenshot "$WORK/gui-smoke.png" \
  -- "$APP" --sandbox 2>&1 | tee -a "$SMOKE_LOG" || gui_status=${PIPESTATUS[0]}
if ((gui_status == 3)); then
  echo "WARNING: no window appeared: this build's 'ossdesk --sandbox' does not open the window" \
    | tee -a "$SMOKE_LOG"
elif ((gui_status != 0)); then
  echo "the frozen app's window failed its smoke test" >&2
  exit 1
fi

step "install.sh round trip"
FAKE_HOME="$WORK/home"
mkdir -p "$FAKE_HOME"
HOME="$FAKE_HOME" XDG_DATA_HOME="$FAKE_HOME/.local/share" sh "$WORK/unpacked/$NAME/install.sh" >/dev/null
installed=$(HOME="$FAKE_HOME" "$FAKE_HOME/.local/bin/ossdesk" --version)
[[ "$installed" == "ossdesk $VERSION" ]] || { echo "installed ossdesk says: $installed" >&2; exit 1; }
desktop-file-validate "$FAKE_HOME/.local/share/applications/ossdesk.desktop"
grep -q "^Exec=\"$FAKE_HOME/.local/opt/ossdesk/ossdesk\" %F$" "$FAKE_HOME/.local/share/applications/ossdesk.desktop"
HOME="$FAKE_HOME" XDG_DATA_HOME="$FAKE_HOME/.local/share" sh "$WORK/unpacked/$NAME/install.sh" --uninstall >/dev/null
[[ ! -e "$FAKE_HOME/.local/opt/ossdesk" && ! -e "$FAKE_HOME/.local/bin/ossdesk" ]] \
  || { echo "install.sh --uninstall left files behind" >&2; exit 1; }
echo "install.sh installs, runs and uninstalls"

# --- the Windows installer script, compiled here as a check -------------------------------
NSIS_LINE="makensis check: skipped"
if [[ "$NSIS" != skip ]]; then
  step "makensis ($NSIS)"
  LAYOUT="$WORK/windows-layout/ossdesk"
  mkdir -p "$LAYOUT"
  # The Windows folder layout, filled with this build's files (a check of the script and a
  # size estimate; the release installer is built from the Windows build).
  cp -a "$BUNDLE/_internal" "$LAYOUT/_internal"
  cp "$BUNDLE/ossdesk" "$LAYOUT/ossdesk.exe"
  cp "$BUNDLE/ossdesk" "$LAYOUT/ossdeskw.exe"
  fast=(); [[ "$NSIS" == fast ]] && fast=(--fast)
  SETUP="$WORK/ossdesk-$VERSION-check-setup.exe"
  (cd "$SRC" && "$VENV/bin/python" packaging/windows/make_installer.py "${fast[@]}" \
    --source "$LAYOUT" --out "$SETUP")
  NSIS_LINE="makensis check ($NSIS compression, Linux files in the Windows layout): $(du -m "$SETUP" | cut -f1) MB"
fi
if [[ "$WINE_CHECK" == 1 ]]; then
  step "installer under Wine64"
  PYTHON="$VENV/bin/python" bash "$SRC/packaging/windows/wine_check.sh"
  NSIS_LINE="$NSIS_LINE; Wine64 install/uninstall check passed"
fi
step ""

# --- results ------------------------------------------------------------------------------
mkdir -p "$REPO/dist"
rm -rf "$REPO/dist/ossdesk"
cp -a "$BUNDLE" "$REPO/dist/ossdesk"
cp "$TARBALL" "$REPO/dist/"
cp "$WORK/gui-smoke.png" "$REPO/dist/gui-smoke.png"
T1=$(date +%s)
REPORT="$REPO/dist/build-linux-report.txt"
{
  echo "ossdesk $VERSION Linux build ($MODE), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
  echo "bundle:  $(du -sm "$BUNDLE" | cut -f1) MB in $(find "$BUNDLE" -type f | wc -l) files (dist/ossdesk)"
  echo "tarball: $(du -m "$TARBALL" | cut -f1) MB (dist/$NAME.tar.gz)"
  echo "$NSIS_LINE"
  echo "total:   $((T1 - T0)) s"
  printf '  %s\n' "${TIMES[@]}"
  echo
  cat "$SMOKE_LOG"
} > "$REPORT"
echo
cat "$REPORT"
