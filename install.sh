#!/usr/bin/env bash
# install.sh: install (or --uninstall) meshless on this node.
#
# Copies dist/meshless-cni atomically into the CNI bin dir and appends our
# entry to the node's primary CNI config (the lexically first .conf/.conflist/
# .json in the conf dir, unless --conf-file names one), wrapping a .conf into
# a .conflist. --uninstall reverses it exactly, and also removes the daemon's
# probe SNAT rule from the node's nat table (as root). Both are idempotent.
# --node (what the DaemonSet runs) also writes the plugin's kubeconfig from the
# pod's service account and waits for the primary config to appear; --watch
# keeps running and re-inserts our entry whenever the primary CNI rewrites its
# config, until SIGTERM (--uninstall-on-exit: then uninstall, with
# --owner-daemonset only when that DaemonSet is being removed).
# The work is done by `meshless cni install|uninstall` (cli/commands/cni-install.ts);
# this script finds the bundle, builds it if needed, and passes the flags on.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh [--uninstall] [options]

  --uninstall                 remove our entry (restoring the original config), the plugin and,
                              as root, the daemon's probe SNAT rule (with --node: the kubeconfig too)
  --cni-bin-dir DIR           CNI plugin dir     (env CNI_BIN_DIR, default /opt/cni/bin)
  --cni-conf-dir DIR          CNI config dir     (env CNI_CONF_DIR, default /etc/cni/net.d)
  --conf-file NAME            config file in the conf dir to edit (default: lexically first)
  --plugin PATH               plugin binary to install (default: dist/meshless-cni)
  --socket-path PATH          the daemon's CNI socket (default /var/run/meshless/cni.sock)
  --kubeconfig PATH           kubeconfig for the plugin
  --log-file PATH             the plugin's log file
  --log-level LEVEL           debug|info|warn|error|silent
  --exclude-namespaces A,B    namespaces never enrolled (replaces the default kube-system)

The local demo (root; see README "The demo"):
  --demo                      install what is missing (apt packages, npm ci, build), then
                              bring up a two-node cluster in network namespaces and show,
                              on a capture, which traffic is mutual TLS; it keeps running
  --demo-down                 remove the demo (same as: node dist/meshless.js demo down)
                              (env MESHLESS_DEMO_DIR, MESHLESS_DEMO_PREFIX: state dir, name prefix)

Node mode (the DaemonSet):
  --node                      also write the plugin's kubeconfig from this pod's service
                              account (to --kubeconfig, default CONF_DIR/meshless-kubeconfig)
                              and wait until the primary CNI has written its config
  --service-account-dir DIR   token and ca.crt (default /var/run/secrets/kubernetes.io/serviceaccount)
  --watch                     keep running; re-insert our entry when the conf dir changes
  --recheck-interval SECONDS  unconditional re-check period with --watch (default 10)
  --uninstall-on-exit         uninstall on SIGTERM/SIGINT (with --watch)
  --owner-daemonset NS/NAME   ... but only when this DaemonSet is gone or being deleted
  -h, --help                  this help
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 2
}

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=install
bin_dir="${CNI_BIN_DIR:-/opt/cni/bin}"
conf_dir="${CNI_CONF_DIR:-/etc/cni/net.d}"
# Flags passed through unchanged to `meshless cni install|uninstall`.
common_args=()
install_args=()
original_args=("$@")

while (($# > 0)); do
  flag="$1"
  case "$flag" in
    -h | --help)
      usage
      exit 0
      ;;
    --uninstall)
      mode=uninstall
      shift
      ;;
    --node | --watch | --uninstall-on-exit)
      install_args+=("$flag")
      shift
      ;;
    --cni-bin-dir | --cni-conf-dir | --conf-file | --plugin | --socket-path | --kubeconfig | --log-file | --log-level | --exclude-namespaces | --service-account-dir | --recheck-interval | --owner-daemonset)
      (($# >= 2)) || die "$flag needs a value"
      value="$2"
      shift 2
      case "$flag" in
        --cni-bin-dir) bin_dir="$value" ;;
        --cni-conf-dir) conf_dir="$value" ;;
        --conf-file) common_args+=(--conf-file "$value") ;;
        *) install_args+=("$flag" "$value") ;;
      esac
      ;;
    --cni-bin-dir=* | --cni-conf-dir=* | --conf-file=* | --plugin=* | --socket-path=* | --kubeconfig=* | --log-file=* | --log-level=* | --exclude-namespaces=* | --service-account-dir=* | --recheck-interval=* | --owner-daemonset=*)
      set -- "${flag%%=*}" "${flag#*=}" "${@:2}"
      ;;
    --demo)
      mode=demo
      shift
      ;;
    --demo-down)
      mode=demo-down
      shift
      ;;
    *)
      usage >&2
      die "unknown argument: $flag"
      ;;
  esac
done

if [[ "$mode" == uninstall ]]; then
  # Uninstall takes the dirs, --conf-file, and --node [--kubeconfig PATH] (removes the kubeconfig too).
  i=0
  while ((i < ${#install_args[@]})); do
    case "${install_args[i]}" in
      --node) i=$((i + 1)) ;;
      --kubeconfig) i=$((i + 2)) ;;
      *) die "--uninstall takes only --cni-bin-dir, --cni-conf-dir, --conf-file, --node and --kubeconfig" ;;
    esac
  done
fi
if [[ "$mode" == install && " ${install_args[*]-} " != *" --plugin "* ]]; then
  install_args+=(--plugin "$repo_dir/dist/meshless-cni")
fi

command -v node >/dev/null 2>&1 || die "node (>= 20.10) is required"

# What the demo needs from Debian/Ubuntu; python3 make g++ build the addon at npm ci.
DEMO_PACKAGES=(iproute2 iptables util-linux containernetworking-plugins tcpdump openssl python3 make g++)

# demo_prepare: packages, node_modules and dist/, each only when missing or stale.
demo_prepare() {
  [[ "$(id -u)" -eq 0 ]] || die "--demo creates network namespaces and iptables rules: run it as root"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
    die "Node.js 20 or later is required (this is $(node --version)); see https://nodejs.org or NodeSource's Debian packages"
  if command -v apt-get >/dev/null 2>&1; then
    local missing=() p
    for p in "${DEMO_PACKAGES[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]} > 0)); then
      echo "install.sh: installing ${missing[*]}" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
    fi
  else
    echo "install.sh: no apt-get; assuming ${DEMO_PACKAGES[*]} are installed" >&2
  fi
  command -v npm >/dev/null 2>&1 || die "npm is required (it comes with Node.js)"
  # npm ci writes node_modules/.package-lock.json: older than package-lock.json means stale.
  if [[ ! -f "$repo_dir/node_modules/.package-lock.json" || "$repo_dir/package-lock.json" -nt "$repo_dir/node_modules/.package-lock.json" ]]; then
    echo "install.sh: running npm ci in $repo_dir" >&2
    (cd "$repo_dir" && npm ci --no-audit --no-fund >&2) || die "npm ci failed"
  fi
  if [[ ! -f "$repo_dir/dist/meshless.js" || ! -f "$repo_dir/dist/meshlessd.js" || ! -f "$repo_dir/dist/meshless-cni" || ! -f "$repo_dir/dist/meshless_netns.node" ]]; then
    echo "install.sh: running npm run build in $repo_dir" >&2
    (cd "$repo_dir" && npm run build >&2) || die "npm run build failed"
  fi
}

# The demo needs root: from a user account, ask sudo, keeping PATH so the same node is found.
if [[ "$mode" == demo* && "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
  exec sudo env "PATH=$PATH" "$0" "${original_args[@]}"
fi

if [[ "$mode" == demo ]]; then
  demo_prepare
  exec node "$repo_dir/dist/meshless.js" demo up
fi
if [[ "$mode" == demo-down ]]; then
  [[ -f "$repo_dir/dist/meshless.js" ]] || die "dist/meshless.js is missing: nothing was built, so no demo can be running"
  exec node "$repo_dir/dist/meshless.js" demo down
fi

cli="$repo_dir/dist/meshless.js"
if [[ ! -f "$cli" || ! -f "$repo_dir/dist/meshless-cni" ]]; then
  echo "install.sh: dist/ is incomplete; running npm run build in $repo_dir" >&2
  (cd "$repo_dir" && npm run build >&2) || die "npm run build failed"
fi

echo "install.sh: ${mode}ing meshless-cni (bin dir $bin_dir, conf dir $conf_dir)"
# exec: in node mode SIGTERM must reach node itself (it uninstalls or not on exit).
exec node "$cli" cni "$mode" \
  --cni-bin-dir "$bin_dir" --cni-conf-dir "$conf_dir" \
  ${common_args[@]+"${common_args[@]}"} ${install_args[@]+"${install_args[@]}"}
