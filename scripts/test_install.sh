#!/usr/bin/env bash
# Tests scripts/install.sh in a temporary root: a fresh install (files, contents, modes), a
# second run that changes nothing and says so, the key never being replaced, collector
# privileges following the config, refusal of invalid configs, the unit passing
# `systemd-analyze verify`, and --uninstall with and without --purge. No systemctl is ever run
# (a fake one on PATH would record it).
#
#   scripts/test_install.sh [PATH-TO-MESHMON]     (default: builds target/debug/meshmon)
# The checks are single-quoted on purpose: `check NAME eval '...'` expands them when they run.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
if [ -z "$bin" ]; then
  echo "test_install: cargo build -p meshmon-agent --bin meshmon"
  cargo build --quiet -p meshmon-agent --bin meshmon
  bin=${CARGO_TARGET_DIR:-target}/debug/meshmon
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x "$bin" ] || {
  echo "test_install: no binary at $bin" >&2
  exit 1
}

t0=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
R=$work/root
mkdir -p "$work/fakebin"
cat >"$work/fakebin/systemctl" <<EOF
#!/bin/sh
echo "systemctl \$*" >>"$work/systemctl.calls"
EOF
chmod +x "$work/fakebin/systemctl"
export PATH="$work/fakebin:$PATH"

passed=0
failed=0
check() { # check NAME COMMAND...: passes if the command succeeds
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    [ ! -f "$work/out" ] || sed 's/^/     | /' "$work/out"
  fi
}
run() { # run EXPECTED-STATUS ARGS...: install.sh with its output in $work/out
  local want=$1 rc=0
  shift
  scripts/install.sh "$@" >"$work/out" 2>&1 || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "     install.sh $* exited $rc, expected $want"
    return 1
  fi
}
mode() { stat -c %a "$1"; }
out_has() { grep -qF -- "$1" "$work/out"; }
snapshot() { (cd "$R" && find . -printf '%p %m %s %T@\n' | sort && find . -type f -exec md5sum {} + | sort); }
# check-config on an installed config, its key_file pointed inside the root.
installed_config_valid() {
  sed "s|\"/etc/meshmon/mesh.key\"|\"$R/etc/meshmon/mesh.key\"|" "$R/etc/meshmon/meshmon.toml" >"$work/c.toml"
  "$bin" check-config --config "$work/c.toml" >"$work/effective" 2>&1
}

gen=(--root "$R" --binary "$bin" --name t1 --listen 0.0.0.0:6130 --neighbour 10.0.0.2:6130 --tag a --tag 'b"q' --dashboard)

# 1. Fresh install into an empty root, config generated from flags.
check "fresh install exits 0" run 0 "${gen[@]}"
check "binary installed, 755, same bytes" eval '[ "$(mode "$R/usr/local/bin/meshmon")" = 755 ] && cmp -s "$bin" "$R/usr/local/bin/meshmon"'
check "config installed, 600" eval '[ "$(mode "$R/etc/meshmon/meshmon.toml")" = 600 ]'
check "key generated, 600, one base64 line of 32 bytes" eval '[ "$(mode "$R/etc/meshmon/mesh.key")" = 600 ] && [ "$(wc -l <"$R/etc/meshmon/mesh.key")" -eq 1 ] && [ "$(head -n1 "$R/etc/meshmon/mesh.key" | base64 -d | wc -c)" -eq 32 ]'
check "unit installed, 644, same as scripts/meshmon.service" eval '[ "$(mode "$R/etc/systemd/system/meshmon.service")" = 644 ] && cmp -s scripts/meshmon.service "$R/etc/systemd/system/meshmon.service"'
check "no collector drop-in when SMART and Docker are off" test ! -e "$R/etc/systemd/system/meshmon.service.d"
check "says it made no systemctl calls" out_has "--root given: no systemctl calls"
check "generated config passes check-config" installed_config_valid
check "generated config holds the flags" eval 'grep -qx "name = \"t1\"" "$work/effective" && grep -qx "dashboard = true" "$work/effective" && grep -qF "\"10.0.0.2:6130\"" "$work/effective" && grep -qF "b\"q" "$work/effective" && grep -qx "key_file = \"$R/etc/meshmon/mesh.key\"" "$work/effective" && grep -qx "docker_dir = \"\"" "$work/effective" && grep -qx "path = \"/var/lib/meshmon/meshmon.db\"" "$work/effective"'

# 2. The same again: nothing changes, and it says so.
snapshot >"$work/before"
sleep 1
check "second run exits 0" run 0 "${gen[@]}"
check "second run says nothing changed" out_has "nothing changed"
snapshot >"$work/after"
check "second run left every file, mode and mtime as it was" cmp -s "$work/before" "$work/after"

# 3. An existing key is never replaced, not even by --key.
"$bin" keygen >"$work/other.key" 2>/dev/null
cp "$R/etc/meshmon/mesh.key" "$work/key.orig"
check "--key with a key installed exits 0" run 0 --root "$R" --binary "$bin" --key "$work/other.key"
check "--key did not replace the installed key" cmp -s "$work/key.orig" "$R/etc/meshmon/mesh.key"
check "--key says it kept the installed key" out_has "kept the installed key"

# 4. A given config: installed (previous kept as .bak), collector privileges follow it.
cat >"$work/collectors.toml" <<'EOF'
[node]
name = "t2"
listen = "0.0.0.0:6130"
key_file = "/etc/meshmon/mesh.key"

[collect]
docker_dir = "/var/lib/docker"
smartctl = "smartctl"
EOF
cp "$R/etc/meshmon/meshmon.toml" "$work/gen.toml"
check "--config with SMART and Docker on exits 0" run 0 --root "$R" --binary "$bin" --config "$work/collectors.toml"
check "config replaced, previous kept as .bak" eval 'cmp -s "$work/collectors.toml" "$R/etc/meshmon/meshmon.toml" && cmp -s "$work/gen.toml" "$R/etc/meshmon/meshmon.toml.bak"'
dropin=$R/etc/systemd/system/meshmon.service.d/collectors.conf
check "drop-in grants CAP_SYS_RAWIO and CAP_DAC_READ_SEARCH, disk devices" eval 'grep -qx "AmbientCapabilities=CAP_SYS_RAWIO CAP_DAC_READ_SEARCH" "$dropin" && grep -qx "CapabilityBoundingSet=CAP_SYS_RAWIO CAP_DAC_READ_SEARCH" "$dropin" && grep -qx "DeviceAllow=block-sd rw" "$dropin" && grep -qx "SupplementaryGroups=disk" "$dropin" && grep -qx "PrivateUsers=no" "$dropin"'
sed -i 's|^smartctl = .*|smartctl = ""|' "$work/collectors.toml"
check "--config with only Docker on exits 0" run 0 --root "$R" --binary "$bin" --config "$work/collectors.toml"
check "drop-in now grants CAP_DAC_READ_SEARCH only, no devices" eval 'grep -qx "AmbientCapabilities=CAP_DAC_READ_SEARCH" "$dropin" && ! grep -q "CAP_SYS_RAWIO\|DeviceAllow\|SupplementaryGroups" "$dropin"'
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$work/verify"
  sed "s|^ExecStart=/usr/local/bin/meshmon|ExecStart=$bin|" "$R/etc/systemd/system/meshmon.service" >"$work/verify/meshmon.service"
  cat "$dropin" >>"$work/verify/meshmon.service"
  check "systemd-analyze verify: unit and drop-in have no unknown or bad settings" eval '(cd "$work/verify" && systemd-analyze verify ./meshmon.service) >"$work/out" 2>&1 && [ ! -s "$work/out" ]'
else
  echo "skip systemd-analyze verify (not installed)"
fi
sed -i 's|^docker_dir = .*|docker_dir = ""|' "$work/collectors.toml"
check "--config with both off exits 0" run 0 --root "$R" --binary "$bin" --config "$work/collectors.toml"
check "drop-in removed when no collector needs privileges" test ! -e "$R/etc/systemd/system/meshmon.service.d"

# 5. Invalid configs are refused and nothing changes.
snapshot >"$work/before"
printf '[node]\nlisen = "0.0.0.0:6130"\n' >"$work/bad.toml"
check "invalid config exits 2" run 2 --root "$R" --binary "$bin" --config "$work/bad.toml"
check "invalid config: check-config's message names the file and key" eval 'out_has "$work/bad.toml: node.lisen"'
printf '[node]\nkey_file = "/srv/other.key"\n' >"$work/otherkey.toml"
check "config naming another key file exits 2" run 2 --root "$R" --binary "$bin" --config "$work/otherkey.toml"
check "bad usage exits 2" run 2 --root "$R" --bogus
check "a missing binary exits 1" run 1 --root "$R" --binary "$work/nonexistent"
snapshot >"$work/after"
check "refused runs changed nothing" cmp -s "$work/before" "$work/after"

# 6. Uninstall keeps config, key and state; --purge removes them.
mkdir -p "$R/var/lib/meshmon" && echo db >"$R/var/lib/meshmon/meshmon.db"
check "--uninstall exits 0" run 0 --root "$R" --uninstall
check "--uninstall removed binary and unit" eval '[ ! -e "$R/usr/local/bin/meshmon" ] && [ ! -e "$R/etc/systemd/system/meshmon.service" ]'
check "--uninstall kept config, key and state" eval '[ -f "$R/etc/meshmon/meshmon.toml" ] && [ -f "$R/etc/meshmon/mesh.key" ] && [ -f "$R/var/lib/meshmon/meshmon.db" ] && out_has "kept /etc/meshmon/meshmon.toml"'
check "second --uninstall has nothing to do" eval 'run 0 --root "$R" --uninstall && out_has "nothing to do"'
check "--uninstall --purge exits 0" run 0 --root "$R" --uninstall --purge
check "--purge removed /etc/meshmon and /var/lib/meshmon" eval '[ ! -e "$R/etc/meshmon" ] && [ ! -e "$R/var/lib/meshmon" ]'

check "systemctl was never called" test ! -e "$work/systemctl.calls"

echo "test_install: $(($(date +%s) - t0))s"
echo "test_install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
