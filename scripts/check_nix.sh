#!/usr/bin/env bash
# Checks the Nix files without nixpkgs (which cannot be downloaded here):
#   1. `nix-instantiate --parse` on every .nix file of the repository and README.md's examples;
#   2. nix/tests/test.nix: evaluates nix/module.nix (with a small stand-in of nixpkgs' lib,
#      module system and pkgs, nix/tests/) and checks the generated systemd unit (ExecStart,
#      hardening, capabilities only for the collectors that need them, key and webhook-file
#      credentials), the firewall port, the generated TOML, the assertions, warnings and type
#      errors that refuse bad settings, nix/package.nix against Cargo.toml, and flake.nix's outputs;
#   3. the generated TOML files with the real `meshmon check-config` (when a binary is there:
#      $MESHMON_BIN, else target/debug/meshmon, else target/release/meshmon);
#   4. the rendered units with `systemd-analyze verify` (when it is installed).
# Installs Debian's nix-bin when nix-instantiate is missing. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's nix-bin, used without its daemon, would warn about the missing nixbld group.
export NIX_CONFIG="build-users-group ="

if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "check_nix: installing Debian's nix-bin"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nix-bin >/dev/null
fi
python=/usr/bin/python3
[ -x "$python" ] || python=python3

t0=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "ok   $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $*"
}

# 1. Every .nix file parses.
while IFS= read -r -d '' f; do
  if nix-instantiate --parse "$f" >/dev/null 2>"$work/err"; then
    pass "parse ${f#./}"
  else
    fail "parse ${f#./}"
    sed 's/^/     | /' "$work/err"
  fi
done < <(find . -name '*.nix' -not -path './target/*' -not -path './.git/*' -not -path '*/node_modules/*' -print0 | sort -z)

# The README's Nix examples parse too.
awk -v dir="$work" '/^```nix$/ {n++; f=dir "/readme-" n ".nix"; on=1; next} /^```$/ {on=0} on {print > f}' README.md
for f in "$work"/readme-*.nix; do
  [ -e "$f" ] || continue
  if nix-instantiate --parse "$f" >/dev/null 2>"$work/err"; then
    pass "parse README.md example $(basename "$f" .nix | sed 's/readme-//')"
  else
    fail "parse README.md example $(basename "$f" .nix | sed 's/readme-//')"
    sed 's/^/     | /' "$work/err" "$f"
  fi
done

# 2. The module, package and flake evaluated against the stand-ins.
bin=${MESHMON_BIN:-}
if [ -z "$bin" ]; then
  for b in "${CARGO_TARGET_DIR:-target}/debug/meshmon" "${CARGO_TARGET_DIR:-target}/release/meshmon"; do
    if [ -x "$b" ]; then
      bin=$b
      break
    fi
  done
fi
key=$work/mesh.key
if [ -n "$bin" ]; then
  "$bin" keygen --out "$key" >/dev/null 2>&1
else
  head -c 32 /dev/urandom | base64 >"$key"
fi
# Webhook URL files for the generated config that names them.
printf '# test\nhttps://hooks.slack.com/services/T000/B000/XXXX\n' >"$work/slack"
printf 'https://hooks.example.org/a\n# comment\n\nhttp://127.0.0.1:9/b\n' >"$work/webhooks"
if nix-instantiate --eval --strict --json nix/tests/test.nix --argstr keyFile "$key" \
  --argstr slackFile "$work/slack" --argstr webhooksFile "$work/webhooks" >"$work/results.json" 2>"$work/err"; then
  pass "evaluate nix/tests/test.nix"
else
  fail "evaluate nix/tests/test.nix"
  sed 's/^/     | /' "$work/err"
  echo "check_nix: $passed passed, $failed failed"
  exit 1
fi
# Print each result; write the generated configs and units out for steps 3 and 4.
"$python" - "$work" <<'EOF' || echo "0 1" >"$work/counts"
import json, os, sys
work = sys.argv[1]
d = json.load(open(os.path.join(work, "results.json")))
ok = bad = 0
for r in d["results"]:
    if r["ok"]:
        ok += 1
        print("ok   module: " + r["name"])
    else:
        bad += 1
        print("FAIL module: " + r["name"])
        for line in r["detail"].splitlines():
            print("     | " + line)
for kind in ("configs", "units"):
    os.makedirs(os.path.join(work, kind), exist_ok=True)
    for name, text in d[kind].items():
        with open(os.path.join(work, kind, name), "w") as f:
            f.write(text)
with open(os.path.join(work, "counts"), "w") as f:
    print(ok, bad, file=f)
EOF
read -r ok bad <"$work/counts"
passed=$((passed + ok))
failed=$((failed + bad))

# 3. The generated configs are valid for the real meshmon.
if [ -n "$bin" ]; then
  for c in "$work"/configs/*; do
    if "$bin" check-config --config "$c" >/dev/null 2>"$work/err"; then
      pass "meshmon check-config accepts the generated config '$(basename "$c")'"
    else
      fail "meshmon check-config rejects the generated config '$(basename "$c")'"
      sed 's/^/     | /' "$work/err" "$c"
    fi
  done
else
  echo "skip meshmon check-config: no binary (build one, or set MESHMON_BIN)"
fi

# 4. The rendered units have no unknown or malformed settings. The store paths they name do not
# exist here, so ExecStart runs /bin/true with the same arguments.
if command -v systemd-analyze >/dev/null 2>&1; then
  for u in "$work"/units/*; do
    name=$(basename "$u")
    mkdir -p "$work/verify/$name"
    sed 's|^ExecStart=[^ ]*|ExecStart=/bin/true|' "$u" >"$work/verify/$name/meshmon.service"
    if (cd "$work/verify/$name" && systemd-analyze verify ./meshmon.service) >"$work/err" 2>&1 && [ ! -s "$work/err" ]; then
      pass "systemd-analyze verify accepts the '$name' unit"
    else
      fail "systemd-analyze verify complains about the '$name' unit"
      sed 's/^/     | /' "$work/err"
    fi
  done
else
  echo "skip systemd-analyze verify: not installed"
fi

echo "check_nix: $(($(date +%s) - t0))s"
echo "check_nix: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
