#!/usr/bin/env bash
# Install egressd as a systemd service from this checkout (run as root). Safe to run again: an
# upgrade is the same command from the new checkout, and the config in /etc/egressd is never touched
# once it exists.
#
#   1. checks Node >= 20 (the unit runs /usr/bin/node)
#   2. builds in the checkout: npm ci && npm run build
#   3. assembles /opt/egressd.new: dist/, blocklists/, sources/, package.json, package-lock.json, README.md
#      and the production dependencies (npm ci --omit=dev)
#   4. copies config/egressd.example.yaml to /etc/egressd/egressd.yaml if that file does not exist
#   5. node dist/cli.js check-config /etc/egressd/egressd.yaml with the new version (stops here,
#      with the installed version untouched, if the config is invalid)
#   6. replaces /opt/egressd with the new tree whole; installs the unit to /etc/systemd/system/
#   7. systemctl daemon-reload; systemctl enable --now egressd (restart if it was running)
#
# Options:
#   --prefix DIR   install under DIR (DIR/opt/egressd, DIR/etc/...) instead of /, e.g. to stage an
#                  image; the service is enabled offline (systemctl --root=DIR) and never started
#   --no-start     install and enable, but do not start or restart the service
#   --dry-run      print what would be done, change nothing
set -euo pipefail

usage () {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

PREFIX=''
START=1
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --no-start) START=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$PREFIX" ]; then
  case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
  PREFIX=${PREFIX%/}
  START=0
fi

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OPT=$PREFIX/opt/egressd
ETC=$PREFIX/etc/egressd
UNIT_DIR=$PREFIX/etc/systemd/system
CONFIG=$ETC/egressd.yaml
NEW=$OPT.new
umask 022

say () { printf '==> %s\n' "$*"; }
die () { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
# Print a command, then run it unless --dry-run.
run () {
  printf '+ %s\n' "$*"
  [ "$DRY" = 1 ] || "$@"
}
# Same, for a command that must run in a directory.
run_in () {
  local dir=$1; shift
  printf '+ (cd %s && %s)\n' "$dir" "$*"
  [ "$DRY" = 1 ] || (cd "$dir" && "$@")
}

[ -f "$SRC/package.json" ] && [ -f "$SRC/systemd/egressd.service" ] || die "run this script from an egressd checkout (not found: $SRC/package.json)"
if [ -z "$PREFIX" ] && [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "must run as root to install to / (or use --prefix DIR, or --dry-run)"
fi
[ "$DRY" = 1 ] && say "dry run: nothing is changed"

# systemd is usable only when it is PID 1 (sd_booted(3): /run/systemd/system exists).
SYSTEMD=0
# (EGRESSD_SYSTEMD_RUN_DIR only lets the tests play a machine without systemd.)
SYSTEMD_RUN_DIR=${EGRESSD_SYSTEMD_RUN_DIR:-/run/systemd/system}
if command -v systemctl >/dev/null 2>&1 && [ -d "$SYSTEMD_RUN_DIR" ]; then SYSTEMD=1; fi
if [ -z "$PREFIX" ] && [ "$SYSTEMD" = 0 ] && [ "$START" = 1 ]; then
  if command -v systemctl >/dev/null 2>&1; then why='systemctl is installed, but systemd is not PID 1'; else why='no systemctl'; fi
  msg="systemd is not running on this machine ($why; no /run/systemd/system): cannot start egressd. Use --no-start to install the files only (enabled for the next boot under systemd), or --prefix DIR to stage them."
  [ "$DRY" = 1 ] || die "$msg"
  say "warning: a real run would stop here: $msg"
  say "(the dry run goes on and shows the steps as on a machine running systemd)"
fi

# 1. Node >= 20, the one that builds and the one the unit runs.
say "checking Node.js >= 20"
command -v node >/dev/null 2>&1 || die "node not found: install Node.js 20 or later (Debian: apt-get install nodejs, from a source that has >= 20)"
command -v npm >/dev/null 2>&1 || die "npm not found: install npm alongside Node.js"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "node $(node --version) is too old: egressd needs Node.js >= 20"
if [ -x /usr/bin/node ]; then
  UNIT_NODE_MAJOR=$(/usr/bin/node -p 'process.versions.node.split(".")[0]')
  [ "$UNIT_NODE_MAJOR" -ge 20 ] || die "/usr/bin/node is $(/usr/bin/node --version), the unit runs it: egressd needs >= 20"
elif [ -z "$PREFIX" ]; then
  die "/usr/bin/node does not exist, and the unit runs it: install Node.js there, or link it (ln -s $(command -v node) /usr/bin/node)"
else
  say "warning: /usr/bin/node does not exist here; the target system needs it"
fi
say "node $(node --version), npm $(npm --version)"

# 2. Build in the checkout.
say "building in $SRC"
run_in "$SRC" npm ci --no-audit --no-fund
run_in "$SRC" npm run build

# 3. The runtime tree: assembled beside the old one, swapped in whole after the config check.
say "assembling the program for $OPT in $NEW"
run rm -rf "$NEW"
run mkdir -p "$NEW"
# sources/ holds the collateral corpus the rule guard reads at run time, and the packs' extracts.
run cp -R "$SRC/dist" "$SRC/blocklists" "$SRC/sources" "$SRC/package.json" "$SRC/package-lock.json" "$NEW/"
[ -f "$SRC/README.md" ] && run cp "$SRC/README.md" "$NEW/"
# The README links to docs/ and deploy/ (dashboard, alert rules): keep the links working.
for d in docs deploy; do [ -d "$SRC/$d" ] && run cp -R "$SRC/$d" "$NEW/"; done
run_in "$NEW" npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund

# 4. The config: the example only when there is none; an admin's file is never replaced.
# 0644: the service runs as a dynamic user that must read it (it holds token hashes, never tokens).
run mkdir -p "$ETC"
if [ -e "$CONFIG" ]; then
  say "keeping the existing config $CONFIG"
else
  say "installing the example config to $CONFIG: edit dns.listen and upstreams for this gateway"
  run install -m 0644 "$SRC/config/egressd.example.yaml" "$CONFIG"
fi

# 5. The config must be valid, with the new version, before that version is installed. Relative
# paths in it resolve against /etc/egressd; a file from before that change that still says
# blocklists.dir: ./blocklists fails here, with the fix in the message.
# Exit 3: valid, but list lines were skipped (printed above): installed, with a warning.
say "checking the config"
check=0
run_in "$NEW" node "$NEW/dist/cli.js" check-config "$CONFIG" || check=$?
if [ "$check" = 3 ]; then
  say "warning: $CONFIG is valid but some list lines are skipped (see above)"
elif [ "$check" != 0 ]; then
  die "$CONFIG is not valid (see above): fix it, then run this script again; nothing else was changed ($OPT is as it was)"
fi

# Only now the new tree replaces the old one (a bad config leaves the installed version alone).
if [ -e "$OPT" ]; then
  run rm -rf "$OPT.old"
  run mv "$OPT" "$OPT.old"
fi
run mv "$NEW" "$OPT"
run rm -rf "$OPT.old"
say "installed the program to $OPT"

# 6. The unit.
say "installing the unit to $UNIT_DIR/egressd.service"
run mkdir -p "$UNIT_DIR"
run install -m 0644 "$SRC/systemd/egressd.service" "$UNIT_DIR/egressd.service"

# 7. systemd.
if [ -n "$PREFIX" ]; then
  say "enabling egressd.service under $PREFIX (offline; not started)"
  if command -v systemctl >/dev/null 2>&1; then
    run systemctl --root="$PREFIX" enable egressd.service
  else
    say "systemctl not found: link $UNIT_DIR/multi-user.target.wants/egressd.service yourself"
  fi
elif [ "$SYSTEMD" = 0 ] && [ "$START" = 0 ]; then
  say "systemd is not running on this machine (no /run/systemd/system): the files are installed; enabling offline, not starting"
  if command -v systemctl >/dev/null 2>&1; then
    run systemctl --root=/ enable egressd.service
  fi
else
  run systemctl daemon-reload
  if [ "$START" = 0 ]; then
    run systemctl enable egressd.service
    say "not started (--no-start): systemctl start egressd"
  elif [ "$SYSTEMD" = 1 ] && systemctl is-active --quiet egressd.service; then
    run systemctl enable egressd.service
    say "egressd is running: restarting it on the new version"
    run systemctl restart egressd.service
  else
    run systemctl enable --now egressd.service
  fi
  if [ "$START" = 1 ] && [ "$DRY" = 0 ]; then
    systemctl --no-pager --lines=0 status egressd.service || die "egressd did not start: journalctl -u egressd -e"
  fi
fi
say "done"
