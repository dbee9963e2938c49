#!/bin/sh
# Install ossdesk for the current user (no root needed), from the unpacked tarball:
#
#   ./install.sh               install or update: ~/.local/opt/ossdesk, the command
#                              ~/.local/bin/ossdesk, the menu entry and the icons
#   ./install.sh --uninstall   remove them again; your upload list, checkpoints and settings
#                              (~/.local/share/ossdesk, ~/.config/ossdesk) are kept
#
# ossdesk also runs straight from the unpacked folder: ./ossdesk
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-"$HOME/.local/share"}
opt="$HOME/.local/opt/ossdesk"
bin="$HOME/.local/bin"
apps="$data_home/applications"
icons="$data_home/icons/hicolor"

refresh_menus() {
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$apps" || true
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -d "$icons" ]; then
    gtk-update-icon-cache -q -t "$icons" || true
  fi
}

remove_program() {
  # Only a folder that holds an ossdesk bundle is removed.
  if [ -e "$opt" ]; then
    if [ -x "$opt/ossdesk" ] && [ -d "$opt/_internal" ]; then
      rm -rf "$opt"
    else
      echo "install.sh: $opt does not look like an ossdesk installation; left alone" >&2
      exit 1
    fi
  fi
  if [ -L "$bin/ossdesk" ] && [ "$(readlink "$bin/ossdesk")" = "$opt/ossdesk" ]; then
    rm -f "$bin/ossdesk"
  fi
  rm -f "$apps/ossdesk.desktop"
  find "$icons" -path "*/apps/ossdesk.*" -type f -exec rm -f {} + 2>/dev/null || true
}

if [ "${1:-}" = "--uninstall" ]; then
  remove_program
  refresh_menus
  echo "ossdesk removed. Your upload list and settings are kept in $data_home/ossdesk."
  exit 0
fi

if [ ! -x "$here/ossdesk" ] || [ ! -d "$here/_internal" ]; then
  echo "install.sh: run me from the unpacked ossdesk folder" >&2
  exit 1
fi

remove_program
mkdir -p "$opt" "$bin" "$apps"
cp -a "$here/ossdesk" "$here/_internal" "$opt/"
ln -sf "$opt/ossdesk" "$bin/ossdesk"

# The menu entry runs this installation by its full path (quoted: the path may hold spaces).
sed -e "s|^Exec=ossdesk|Exec=\"$opt/ossdesk\"|" -e "s|^TryExec=ossdesk|TryExec=$opt/ossdesk|" \
  "$here/ossdesk.desktop" > "$apps/ossdesk.desktop"
if [ -d "$here/icons/hicolor" ]; then
  mkdir -p "$icons"
  cp -R "$here/icons/hicolor/." "$icons/"
fi
refresh_menus

echo "ossdesk installed in $opt"
case ":$PATH:" in
  *":$bin:"*) echo "Start it from your applications menu, or type: ossdesk" ;;
  *) echo "Start it from your applications menu, or type: $bin/ossdesk" ;;
esac
