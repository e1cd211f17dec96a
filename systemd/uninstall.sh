#!/usr/bin/env bash
# Remove the egressd service installed by systemd/install.sh (run as root): stops and disables it,
# removes /etc/systemd/system/egressd.service and /opt/egressd. Keeps the config (/etc/egressd), the
# data (/var/lib/egressd) and local drop-ins (/etc/systemd/system/egressd.service.d) unless --purge.
#
# Options:
#   --purge        also remove /etc/egressd, the data and the drop-ins
#   --prefix DIR   remove from under DIR instead of / (what install.sh --prefix DIR staged)
#   --dry-run      print what would be done, change nothing
set -euo pipefail

usage () {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

PREFIX=''
PURGE=0
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "uninstall.sh: --prefix needs a directory" >&2; exit 2; }; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --purge) PURGE=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$PREFIX" ]; then
  case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
  PREFIX=${PREFIX%/}
fi

OPT=$PREFIX/opt/egressd
ETC=$PREFIX/etc/egressd
UNIT_DIR=$PREFIX/etc/systemd/system
UNIT=$UNIT_DIR/egressd.service

say () { printf '==> %s\n' "$*"; }
die () { printf 'uninstall.sh: error: %s\n' "$*" >&2; exit 1; }
run () {
  printf '+ %s\n' "$*"
  [ "$DRY" = 1 ] || "$@"
}

if [ -z "$PREFIX" ] && [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "must run as root to uninstall from / (or use --prefix DIR, or --dry-run)"
fi
[ "$DRY" = 1 ] && say "dry run: nothing is changed"

HAVE_SYSTEMCTL=0
command -v systemctl >/dev/null 2>&1 && HAVE_SYSTEMCTL=1
SYSTEMD=0
# (EGRESSD_SYSTEMD_RUN_DIR only lets the tests play a machine without systemd.)
SYSTEMD_RUN_DIR=${EGRESSD_SYSTEMD_RUN_DIR:-/run/systemd/system}
if [ "$HAVE_SYSTEMCTL" = 1 ] && [ -d "$SYSTEMD_RUN_DIR" ]; then SYSTEMD=1; fi

# Stop and disable.
if [ -n "$PREFIX" ] || [ "$SYSTEMD" = 0 ]; then
  [ -z "$PREFIX" ] && say "systemd is not running on this machine (no /run/systemd/system): nothing to stop; disabling offline"
  if [ "$HAVE_SYSTEMCTL" = 1 ] && [ -e "$UNIT" ]; then
    run systemctl --root="${PREFIX:-/}" disable egressd.service
  fi
else
  say "stopping and disabling egressd"
  run systemctl disable --now egressd.service || true
fi
# A link left by hand, or by a systemctl that was not there.
for link in "$UNIT_DIR"/*.wants/egressd.service; do
  if [ -L "$link" ]; then run rm -f "$link"; fi
done

say "removing the unit and the program"
run rm -f "$UNIT"
run rm -rf "$OPT" "$OPT.new" "$OPT.old"

if [ "$PURGE" = 1 ]; then
  say "purging the config, the data and the drop-ins"
  # DynamicUser keeps the real state directory in /var/lib/private; /var/lib/egressd links to it.
  run rm -rf "$ETC" "$PREFIX/var/lib/egressd" "$PREFIX/var/lib/private/egressd" "$UNIT_DIR/egressd.service.d"
else
  say "kept: $ETC, $PREFIX/var/lib/egressd (remove with --purge)"
fi

if [ -z "$PREFIX" ] && [ "$SYSTEMD" = 1 ]; then
  run systemctl daemon-reload
  run systemctl reset-failed egressd.service 2>/dev/null || true
fi
say "done"
