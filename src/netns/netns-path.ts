/**
 * A pod's netns path as the runtime names it, seen from the daemon. Some
 * runtimes pass `/proc/<pid>/ns/net`; a daemon in a container sees the
 * host's /proc at another place (`hostProcPath`, e.g. /host/proc), while
 * /var/run/netns paths are mounted at the same place.
 */
export function daemonNetnsPath(runtimePath: string, hostProcPath: string | undefined): string {
  if (hostProcPath === undefined || !runtimePath.startsWith('/proc/')) return runtimePath;
  return `${hostProcPath.replace(/\/+$/, '')}/${runtimePath.slice('/proc/'.length)}`;
}
