#!/usr/bin/env bash
# Add LR-IAD Desktop to the Linux desktop's application menu (per user, no root needed).
#
#     bash packaging/install_desktop.sh [APP]          # APP: the executable (default: dist/lriad/lriad)
#     bash packaging/install_desktop.sh --uninstall
#
# Writes $XDG_DATA_HOME/applications/lriad-desktop.desktop and the icon into the hicolor theme
# ($XDG_DATA_HOME defaults to ~/.local/share). Images can then be opened with the app from a file manager.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/lriad-desktop.desktop"
svg="$data/icons/hicolor/scalable/apps/lriad-desktop.svg"
png="$data/icons/hicolor/256x256/apps/lriad-desktop.png"

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$entry" "$svg" "$png"
    refresh
    echo "Removed LR-IAD Desktop from the application menu."
    exit 0
fi

app="${1:-$root/dist/lriad/lriad}"
if [ ! -x "$app" ]; then
    echo "error: no executable at $app (build it with scripts/build_app.sh, or pass its path)" >&2
    exit 2
fi
app="$(cd "$(dirname "$app")" && pwd)/$(basename "$app")"
icons="$root/resources/icons"
[ -d "$icons" ] || icons="$(dirname "$app")/_internal/resources/icons"  # run from inside a built app
mkdir -p "$(dirname "$entry")" "$(dirname "$svg")" "$(dirname "$png")"
install -m 644 "$icons/lriad-desktop.svg" "$svg"
install -m 644 "$icons/lriad-desktop.png" "$png"
# Exec= is quoted (spaces are fine) with ", `, $ and \ escaped as the Desktop Entry spec asks;
# TryExec= is a plain path. The sed escapes keep & | \ literal in the replacement.
quoted=$(printf '%s' "$app" | sed -e 's/\\/\\\\\\\\/g' -e 's/["`$]/\\\\&/g')
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
sed -e "s|@EXEC_QUOTED@|$(sed_escape "$quoted")|g" -e "s|@EXEC@|$(sed_escape "$app")|g" \
    "$here/lriad-desktop.desktop" > "$entry.tmp"
chmod 644 "$entry.tmp"
mv "$entry.tmp" "$entry"
refresh
echo "Installed $entry (runs $app)."
