#!/usr/bin/env bash
# Installs meshmon as a systemd service on a non-NixOS Linux host (NixOS: use nix/module.nix):
#
#   /usr/local/bin/meshmon                    the binary (--binary PATH, default target/release/meshmon)
#   /etc/meshmon/meshmon.toml                 the config, 0600 (--config FILE, else generated from flags)
#   /etc/meshmon/mesh.key                     the mesh key, 0600 (--key FILE, else `meshmon keygen`);
#                                             an existing key is never replaced
#   /etc/systemd/system/meshmon.service       scripts/meshmon.service
#   /etc/systemd/system/meshmon.service.d/collectors.conf
#                                             only when SMART or the Docker walk is enabled: the
#                                             capabilities and devices they need
#   /var/lib/meshmon                          the store (systemd's StateDirectory)
#
# The config is validated with `meshmon check-config` before anything is installed. Running it
# again changes nothing and says so; changed files are replaced and the service restarted.
# `--uninstall` removes the binary and the unit, keeping config, key and state unless `--purge`.
# `--root DIR` installs under DIR instead of / and never calls systemctl (for tests).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh [OPTIONS]            install or update meshmon and its systemd service
       install.sh --uninstall [--purge] [--root DIR]

Options:
  --binary PATH      meshmon binary to install (default: target/release/meshmon of this checkout)
  --config FILE      install this config (validated); replaces an existing one, keeping it as .bak
  --key FILE         install this mesh key if none is installed yet (default: generate one)
  --no-start         enable the service but do not start or restart it
  --root DIR         install under DIR instead of /; no systemctl calls
  --uninstall        remove the binary, unit and drop-in; keep config, key and state
  --purge            with --uninstall: also remove /etc/meshmon and /var/lib/meshmon
  -h, --help         this text

Generating a config (only when none is installed and no --config is given):
  --name NAME        node.name (default: the hostname)
  --listen ADDR      node.listen (default: 0.0.0.0:6130)
  --neighbour ADDR   a node to dial, host:port (repeatable)
  --dashboard        dashboard role: store, alerts, history
  --tag TAG          a tag (repeatable)
  --docker-dir DIR   report the size of this Docker directory (grants CAP_DAC_READ_SEARCH)
  --smartctl PROG    read SMART data with this smartctl (grants CAP_SYS_RAWIO and disk access)

Exit status: 0 done (or nothing to do), 1 failure, 2 bad usage or invalid config.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
  local code=$1
  shift
  printf 'install.sh: error: %s\n' "$*" >&2
  exit "$code"
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binary=$here/../target/release/meshmon
config_src=""
key_src=""
root=""
start=1
uninstall=0
purge=0
gen_name=""
gen_listen="0.0.0.0:6130"
gen_neighbours=()
gen_dashboard=false
gen_tags=()
gen_docker=""
gen_smartctl=""
gen_flags=0

need_arg() { [ $# -ge 2 ] || die 2 "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    --binary) need_arg "$@"; binary=$2; shift 2 ;;
    --config) need_arg "$@"; config_src=$2; shift 2 ;;
    --key) need_arg "$@"; key_src=$2; shift 2 ;;
    --root) need_arg "$@"; root=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --name) need_arg "$@"; gen_name=$2; gen_flags=1; shift 2 ;;
    --listen) need_arg "$@"; gen_listen=$2; gen_flags=1; shift 2 ;;
    --neighbour | --neighbor) need_arg "$@"; gen_neighbours+=("$2"); gen_flags=1; shift 2 ;;
    --dashboard) gen_dashboard=true; gen_flags=1; shift ;;
    --tag) need_arg "$@"; gen_tags+=("$2"); gen_flags=1; shift 2 ;;
    --docker-dir) need_arg "$@"; gen_docker=$2; gen_flags=1; shift 2 ;;
    --smartctl) need_arg "$@"; gen_smartctl=$2; gen_flags=1; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die 2 "unknown option '$1' (see --help)" ;;
  esac
done
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die 2 "--purge only goes with --uninstall"
if [ -n "$config_src" ] && [ "$gen_flags" -eq 1 ]; then
  die 2 "--config FILE and the config-generating flags (--name, --listen, ...) exclude each other"
fi

if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=""
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  die 1 "run as root (or use --root DIR to install into a directory)"
fi

# Installed paths (as the running system sees them) and where they are written (under --root).
BIN=/usr/local/bin/meshmon
CONF_DIR=/etc/meshmon
CONF=$CONF_DIR/meshmon.toml
KEY=$CONF_DIR/mesh.key
UNIT=/etc/systemd/system/meshmon.service
DROPIN_DIR=/etc/systemd/system/meshmon.service.d
DROPIN=$DROPIN_DIR/collectors.conf
STATE=/var/lib/meshmon
STATE_PRIVATE=/var/lib/private/meshmon
r() { printf '%s%s' "$root" "$1"; }

# systemctl is used only on the real root, where systemd runs.
use_systemd=0
if [ -n "$root" ]; then
  systemd_note="--root given: no systemctl calls"
elif ! command -v systemctl >/dev/null 2>&1; then
  systemd_note="systemctl not found: the service is installed but not enabled"
elif [ ! -d /run/systemd/system ]; then
  systemd_note="systemd is not running here: the service is installed but not enabled"
else
  use_systemd=1
fi

changes=0
changed() {
  changes=$((changes + 1))
  say "$*"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- uninstall ---------------------------------------------------------------------------------
if [ "$uninstall" -eq 1 ]; then
  if [ "$use_systemd" -eq 1 ] && [ -e "$(r "$UNIT")" ]; then
    if systemctl is-enabled --quiet meshmon.service 2>/dev/null ||
      systemctl is-active --quiet meshmon.service 2>/dev/null; then
      systemctl disable --now meshmon.service
      changed "stopped and disabled meshmon.service"
    fi
  fi
  for f in "$BIN" "$UNIT" "$DROPIN"; do
    if [ -e "$(r "$f")" ]; then
      rm -f "$(r "$f")"
      changed "removed $f"
    fi
  done
  rmdir "$(r "$DROPIN_DIR")" 2>/dev/null || true
  if [ "$use_systemd" -eq 1 ] && [ "$changes" -gt 0 ]; then
    systemctl daemon-reload
  fi
  if [ "$purge" -eq 1 ]; then
    for d in "$CONF_DIR" "$STATE" "$STATE_PRIVATE"; do
      if [ -e "$(r "$d")" ] || [ -L "$(r "$d")" ]; then
        rm -rf "$(r "$d")"
        changed "removed $d"
      fi
    done
  else
    kept=()
    for p in "$CONF" "$KEY" "$STATE"; do
      [ ! -e "$(r "$p")" ] || kept+=("$p")
    done
    [ ${#kept[@]} -eq 0 ] || say "kept ${kept[*]} (--purge removes them)"
  fi
  if [ "$use_systemd" -eq 0 ]; then say "$systemd_note"; fi
  if [ "$changes" -eq 0 ]; then
    say "meshmon is not installed: nothing to do"
  else
    say "meshmon uninstalled"
  fi
  exit 0
fi

# ---- install: check everything first, then change the system -----------------------------------
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  die 1 "no meshmon binary at '$binary' (build it with 'cargo build --release' or pass --binary PATH)"
fi
"$binary" --version >/dev/null 2>&1 || die 1 "'$binary --version' failed: is it a meshmon binary for this machine?"
[ -f "$here/meshmon.service" ] || die 1 "missing $here/meshmon.service"
[ -z "$config_src" ] || [ -f "$config_src" ] || die 2 "no config file '$config_src'"
[ -z "$key_src" ] || [ -s "$key_src" ] || die 2 "no key file '$key_src' (or it is empty)"

# The key the config will be validated with: the installed one, else --key, else a new one.
if [ -e "$(r "$KEY")" ]; then
  key_new=""
  key_check=$(r "$KEY")
elif [ -n "$key_src" ]; then
  key_new=$key_src
  key_check=$key_src
else
  "$binary" keygen --out "$tmp/mesh.key" >/dev/null 2>&1 || die 1 "'$binary keygen' failed"
  key_new=$tmp/mesh.key
  key_check=$tmp/mesh.key
fi

toml_str() {
  case $1 in *$'\n'* | *$'\r'*) die 2 "a value must be one line: '$1'" ;; esac
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}
toml_list() {
  local out="" v
  for v in "$@"; do out+="${out:+, }$(toml_str "$v")"; done
  printf '[%s]' "$out"
}

# The config to install: --config, else the installed one, else one generated from the flags.
config_kept=0
if [ -n "$config_src" ]; then
  candidate=$config_src
elif [ -e "$(r "$CONF")" ]; then
  candidate=$(r "$CONF")
  config_kept=1
  [ "$gen_flags" -eq 0 ] ||
    say "a config is installed already: ignoring the generating flags (use --config FILE to replace it)"
else
  candidate=$tmp/meshmon.toml
  {
    echo "# meshmon config, generated by scripts/install.sh. Reference: README.md, \"Configuration reference\"."
    echo "# After editing: meshmon check-config; systemctl restart meshmon; and run install.sh again"
    echo "# if you turned SMART or the Docker walk on or off (it grants what they need)."
    echo
    echo "[node]"
    [ -z "$gen_name" ] || echo "name = $(toml_str "$gen_name")"
    echo "listen = $(toml_str "$gen_listen")"
    echo "neighbours = $(toml_list ${gen_neighbours[@]+"${gen_neighbours[@]}"})"
    echo "dashboard = $gen_dashboard"
    echo "key_file = $(toml_str "$KEY")"
    echo "tags = $(toml_list ${gen_tags[@]+"${gen_tags[@]}"})"
    echo
    echo "[collect]"
    echo "docker_dir = $(toml_str "$gen_docker")    # \"\": off"
    echo "smartctl = $(toml_str "$gen_smartctl")    # \"\": off"
    echo
    echo "[store]"
    echo "path = $(toml_str "$STATE/meshmon.db")"
  } >"$candidate"
fi

# Validate a copy whose key_file points at the key it will have: the installed key path inside
# --root, or the key about to be installed. The service reads the key at $KEY only, so a config
# naming another key file is refused.
check=$tmp/check.toml
key_re='^([[:space:]]*key_file[[:space:]]*=[[:space:]]*)["'"'"']([^"'"'"']*)["'"'"'](.*)$'
key_in_config=""
while IFS= read -r line; do
  if [[ $line =~ $key_re ]]; then key_in_config=${BASH_REMATCH[2]}; fi
done <"$candidate"
if [ -n "$key_in_config" ] && [ "$key_in_config" != "$KEY" ]; then
  die 2 "$candidate: node.key_file is '$key_in_config'; the service loads the key from $KEY only: put the key there and set key_file = \"$KEY\""
fi
: >"$check"
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ $key_re ]]; then
    line="${BASH_REMATCH[1]}$(toml_str "$key_check")${BASH_REMATCH[3]}"
  fi
  printf '%s\n' "$line" >>"$check"
done <"$candidate"
if ! effective=$("$binary" check-config --config "$check" 2>"$tmp/check.err"); then
  sed -e "s|$check|$candidate|g" "$tmp/check.err" >&2
  die 2 "the config is not valid; nothing was installed"
fi

# What the enabled collectors need, as a drop-in (empty: none).
effective_value() { printf '%s\n' "$effective" | sed -n "s/^$1 = \"\\(.*\\)\"\$/\\1/p" | head -n1; }
docker_dir=$(effective_value docker_dir)
smartctl=$(effective_value smartctl)
dropin=""
if [ -n "$docker_dir" ] || [ -n "$smartctl" ]; then
  caps=()
  [ -z "$smartctl" ] || caps+=(CAP_SYS_RAWIO)
  [ -z "$docker_dir" ] || caps+=(CAP_DAC_READ_SEARCH)
  dropin="# Written by scripts/install.sh from the config's enabled collectors:"
  [ -z "$smartctl" ] || dropin+=$'\n'"# smartctl = \"$smartctl\": SATA/SAS pass-through needs CAP_SYS_RAWIO and the disk devices."
  [ -z "$docker_dir" ] || dropin+=$'\n'"# docker_dir = \"$docker_dir\": walking it needs CAP_DAC_READ_SEARCH."
  dropin+=$'\n'"[Service]"
  dropin+=$'\n'"AmbientCapabilities=${caps[*]}"
  dropin+=$'\n'"CapabilityBoundingSet=${caps[*]}"
  dropin+=$'\n'"PrivateUsers=no"
  if [ -n "$smartctl" ]; then
    dropin+=$'\n'"PrivateDevices=no"
    dropin+=$'\n'"DevicePolicy=closed"
    dropin+=$'\n'"DeviceAllow=block-sd rw"
    dropin+=$'\n'"DeviceAllow=block-blkext rw"
    dropin+=$'\n'"DeviceAllow=char-nvme rw"
    dropin+=$'\n'"SupplementaryGroups=disk"
  fi
  dropin+=$'\n'
fi

# ---- install: change only what differs ----------------------------------------------------------
# put SRC DEST MODE WHAT: install SRC as DEST (atomically, by rename) unless it is the same.
put() {
  local src=$1 dest=$2 mode=$3 what=$4 d
  d=$(r "$dest")
  if [ -f "$d" ] && cmp -s "$src" "$d"; then
    if [ "$(stat -c %a "$d")" != "$mode" ]; then
      chmod "$mode" "$d"
      changed "$what: set mode $mode on $dest"
      return 0
    fi
    return 1
  fi
  mkdir -p "$(dirname "$d")"
  install -m "$mode" "$src" "$d.new.$$"
  local existed=0
  [ ! -e "$d" ] || existed=1
  mv -f "$d.new.$$" "$d"
  if [ "$existed" -eq 1 ]; then changed "$what: updated $dest"; else changed "$what: installed $dest"; fi
  return 0
}

restart=0
put "$binary" "$BIN" 755 binary && restart=1

if [ ! -d "$(r "$CONF_DIR")" ]; then
  mkdir -p "$(dirname "$(r "$CONF_DIR")")"
  mkdir -m 755 "$(r "$CONF_DIR")"
fi
if [ -n "$key_new" ]; then
  install -m 600 "$key_new" "$(r "$KEY")"
  if [ "$key_new" = "$key_src" ]; then
    changed "key: installed $KEY from $key_src"
  else
    changed "key: generated $KEY"
  fi
elif [ -n "$key_src" ] && ! cmp -s "$key_src" "$(r "$KEY")"; then
  say "key: $KEY exists and differs from $key_src: kept the installed key (remove it first to replace it)"
fi
key_mode=$(stat -c %a "$(r "$KEY")")
[ "$key_mode" = 600 ] || say "warning: $KEY has mode $key_mode; 600 keeps it to root"

if [ "$config_kept" -eq 1 ]; then
  if [ "$(stat -c %a "$(r "$CONF")")" != 600 ]; then
    chmod 600 "$(r "$CONF")"
    changed "config: set mode 600 on $CONF"
    restart=1
  fi
else
  if [ -n "$config_src" ] && [ -e "$(r "$CONF")" ] && ! cmp -s "$config_src" "$(r "$CONF")"; then
    cp -p "$(r "$CONF")" "$(r "$CONF").bak"
    say "config: previous $CONF kept as $CONF.bak"
  fi
  put "$candidate" "$CONF" 600 config && restart=1
fi

reload=0
put "$here/meshmon.service" "$UNIT" 644 unit && reload=1
if [ -n "$dropin" ]; then
  printf '%s' "$dropin" >"$tmp/collectors.conf"
  put "$tmp/collectors.conf" "$DROPIN" 644 "collector privileges" && reload=1
elif [ -e "$(r "$DROPIN")" ]; then
  rm -f "$(r "$DROPIN")"
  rmdir "$(r "$DROPIN_DIR")" 2>/dev/null || true
  changed "collector privileges: removed $DROPIN (no collector needs them now)"
  reload=1
fi

# ---- systemd -----------------------------------------------------------------------------------
if [ "$use_systemd" -eq 1 ]; then
  if [ "$reload" -eq 1 ]; then
    systemctl daemon-reload
  fi
  if ! systemctl is-enabled --quiet meshmon.service 2>/dev/null; then
    systemctl enable --quiet meshmon.service
    changed "service: enabled meshmon.service"
  fi
  if [ "$start" -eq 1 ]; then
    if ! systemctl is-active --quiet meshmon.service; then
      systemctl start meshmon.service
      changed "service: started meshmon.service"
    elif [ "$restart" -eq 1 ] || [ "$reload" -eq 1 ]; then
      systemctl restart meshmon.service
      say "service: restarted meshmon.service"
    fi
  fi
else
  say "$systemd_note"
fi

if [ "$changes" -eq 0 ]; then
  say "meshmon is already installed and up to date: nothing changed"
else
  say "done: $changes change(s)"
fi
