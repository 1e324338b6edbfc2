/**
 * How the node daemon's Node.js runtime is started: the flags the image's
 * ENTRYPOINT (deploy/Dockerfile) and the simulated cluster's daemons
 * (src/sim/daemon-process.ts) both pass, so tests run the daemon as it is
 * deployed. A unit test holds the Dockerfile to this list.
 */

/**
 * `--optimize-for-size`: V8 grows its heaps less eagerly and collects
 * sooner. The data plane allocates fast and keeps little (stream objects,
 * buffers per connection), so with V8's defaults a daemon under the bench's
 * connection-rate load peaked 30-40 MB above idle (120-132 MB with two
 * data-plane workers) and with this flag about 100 MB, at no CPU cost the
 * bench could separate from its noise. It applies to every isolate of the
 * process, the workers' included.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--optimize-for-size'];
