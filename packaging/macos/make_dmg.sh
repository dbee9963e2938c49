#!/usr/bin/env bash
# Make dist/ossdesk-VERSION-macos-ARCH.dmg from dist/ossdesk.app (built by packaging/ossdesk.spec):
# a compressed disk image holding the app and a link to /Applications to drag it onto.
#
#   bash packaging/macos/make_dmg.sh [path/to/ossdesk.app]
#
# Signing and notarization happen only when their secrets are in the environment (CI
# variables; see docs/PACKAGING.md). Without them the result is an unsigned image for testing
# (PyInstaller signs the app ad hoc, which Apple silicon needs to run it at all).
#   OSSDESK_CODESIGN_IDENTITY   "Developer ID Application: NAME (TEAMID)": the spec already signed
#                               every binary and the app with it (hardened runtime); the image
#                               is signed here too
#   APPLE_API_KEY_PATH          App Store Connect API key (.p8) for notarytool, with
#   APPLE_API_KEY_ID            its key id and
#   APPLE_API_ISSUER            issuer id
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
APP=${1:-"$REPO/dist/ossdesk.app"}
[[ -d "$APP/Contents/MacOS" ]] || { echo "make_dmg.sh: no app at $APP" >&2; exit 1; }

PLIST="$APP/Contents/Info.plist"
VERSION=$(/usr/libexec/PlistBuddy -c "Print CFBundleShortVersionString" "$PLIST")
ARCH=${OSSDESK_TARGET_ARCH:-$(uname -m)}
DMG="$REPO/dist/ossdesk-$VERSION-macos-$ARCH.dmg"
IDENTITY=${OSSDESK_CODESIGN_IDENTITY:-}

# The app's executable must be of the architecture this image is named after.
lipo -archs "$APP/Contents/MacOS/ossdesk" | grep -qw "$ARCH" \
  || { echo "make_dmg.sh: $APP is not built for $ARCH" >&2; exit 1; }

if [[ -n "$IDENTITY" ]]; then
  echo "== verifying the app's signature"
  codesign --verify --deep --strict --verbose=2 "$APP"
  codesign --display --verbose=2 "$APP" 2>&1 | grep -E "Authority|TeamIdentifier|Runtime" || true
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ditto "$APP" "$STAGE/ossdesk.app"          # ditto keeps signatures, symlinks and attributes
ln -s /Applications "$STAGE/Applications"

echo "== creating $DMG"
rm -f "$DMG"
hdiutil create -volname "ossdesk $VERSION" -srcfolder "$STAGE" -fs HFS+ \
  -format UDZO -imagekey zlib-level=9 -ov "$DMG" >/dev/null
hdiutil verify "$DMG" >/dev/null

if [[ -n "$IDENTITY" ]]; then
  echo "== signing the image"
  codesign --sign "$IDENTITY" --timestamp "$DMG"
fi

if [[ -n "$IDENTITY" && -n "${APPLE_API_KEY_PATH:-}" && -n "${APPLE_API_KEY_ID:-}" && -n "${APPLE_API_ISSUER:-}" ]]; then
  echo "== notarizing (Apple checks the image and every program in it)"
  xcrun notarytool submit "$DMG" --key "$APPLE_API_KEY_PATH" --key-id "$APPLE_API_KEY_ID" \
    --issuer "$APPLE_API_ISSUER" --wait --timeout 30m
  # The ticket goes into the image, so Gatekeeper accepts it offline too.
  xcrun stapler staple "$DMG"
  xcrun stapler validate "$DMG"
  spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
else
  echo "== not notarized (no Developer ID or notary key given): for testing only"
fi

echo "$DMG ($(du -m "$DMG" | cut -f1) MB)"
