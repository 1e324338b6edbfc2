/**
 * The cluster signer's composition root: root, discovery, attestors, the
 * signer and its gRPC server, built from the config and torn down in
 * reverse. Nothing here decides anything (src/signer/cluster-signer.ts does).
 *
 * The root files are watched: replacing them (a Secret update: new bundle,
 * or a new signing key) takes effect for the next request, which is how a
 * root rotates (README "Rotating the cluster root").
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DiscoverySource } from '../src/discovery/discovery-source.js';
import { FileDiscoverySource } from '../src/discovery/file-source.js';
import { KubernetesDiscoverySource } from '../src/discovery/kubernetes-source.js';
import { errorMessage } from '../src/errors.js';
import { loadRootCa } from '../src/identity/certificate-authority.js';
import type { Logger } from '../src/logger.js';
import { ClusterSigner, type SignerRoot } from '../src/signer/cluster-signer.js';
import { JoinCredentialAttestor, joinMacKey } from '../src/signer/join-credential.js';
import { publishTrustBundle } from '../src/signer/bundle-publisher.js';
import { KubeAttestationClient, KubeRequester } from '../src/signer/kube-attestation-client.js';
import { KubernetesAttestor } from '../src/signer/kubernetes-attestor.js';
import type { NodeAttestor } from '../src/signer/node-attestation.js';
import type { SignerProgramConfig } from '../src/signer/signer-config.js';
import { issueServingCertificate } from '../src/signer/serving-certificate.js';
import { startSignerServer, type RunningSignerServer } from '../src/signer/signer-server.js';

export interface RunningSigner {
  readonly signer: ClusterSigner;
  readonly server: RunningSignerServer;
  readonly port: number;
  /** Issued and refused requests since start. */
  readonly counts: { issued: number; refused: number };
  stop(): Promise<void>;
}

async function loadRoot(config: SignerProgramConfig): Promise<SignerRoot> {
  const [certPem, keyPem] = await Promise.all([
    readFile(config.rootCertFile, 'utf8'),
    readFile(config.rootKeyFile, 'utf8'),
  ]);
  return loadRootCa(
    { certPem, keyPem, origin: `root ${config.rootCertFile}` },
    { trustDomain: config.trustDomain, now: Date.now() },
  );
}

async function attestorsFor(
  config: SignerProgramConfig,
  kube: () => KubeRequester,
): Promise<NodeAttestor[]> {
  const out: NodeAttestor[] = [];
  const k = config.kubernetesAttestation;
  if (k)
    out.push(
      new KubernetesAttestor({
        api: new KubeAttestationClient(kube()),
        audience: k.audience,
        daemonServiceAccounts: k.daemonServiceAccounts,
      }),
    );
  if (config.joinKeyFile !== undefined) {
    const text = await readFile(config.joinKeyFile, 'utf8');
    out.push(new JoinCredentialAttestor({ macKey: joinMacKey(text, config.joinKeyFile) }));
  }
  return out;
}

export async function startSigner(
  config: SignerProgramConfig,
  log: Logger,
): Promise<RunningSigner> {
  let root = await loadRoot(config);
  log.info(
    {
      trustDomain: config.trustDomain,
      signingRoot: root.authority.certificate.serialNumber.toLowerCase(),
      bundleRoots: root.bundle.roots.length,
    },
    'loaded the cluster root',
  );
  const discovery: DiscoverySource =
    config.discovery.source === 'file'
      ? new FileDiscoverySource(config.discovery.file, log)
      : new KubernetesDiscoverySource({ kubeconfig: config.discovery.kubeconfig, log });
  const synced = discovery.start();
  synced.then(
    () => log.info({}, 'discovery synced'),
    (err: unknown) => log.error({ err: errorMessage(err) }, 'discovery failed'),
  );
  if (config.discovery.source === 'file') await synced;
  let kubeApi: KubeRequester | undefined;
  const kube = (): KubeRequester =>
    (kubeApi ??= new KubeRequester(
      config.discovery.source === 'kubernetes' ? config.discovery.kubeconfig : undefined,
    ));
  const attestors = await attestorsFor(config, kube);
  // The bundle ConfigMap: written at start and after every root change,
  // retried every 30 s while the API server refuses.
  let publishTimer: NodeJS.Timeout | undefined;
  const publish = (): void => {
    const ref = config.publishTrustBundle;
    if (ref === undefined) return;
    clearTimeout(publishTimer);
    publishTrustBundle(kube(), ref, root.bundle.pem).then(
      (what) => {
        if (what !== 'unchanged') log.info({ configMap: ref, what }, 'published the trust bundle');
      },
      (err: unknown) => {
        log.error(
          { configMap: ref, err: errorMessage(err) },
          'cannot publish the trust bundle; retrying in 30 s',
        );
        publishTimer = setTimeout(publish, 30_000);
        publishTimer.unref();
      },
    );
  };
  publish();
  const signer = new ClusterSigner({
    trustDomain: config.trustDomain,
    root,
    attestors,
    discovery,
    maxTtlMs: config.svidTtlSeconds * 1000,
  });
  const counts = { issued: 0, refused: 0 };
  let serving = issueServingCertificate(root.authority, config.serverNames, Date.now());
  const server = await startSignerServer(
    {
      signer,
      certPem: serving.certPem,
      keyPem: serving.keyPem,
      onOutcome: (o) => {
        if (o.outcome === 'issued') {
          counts.issued++;
          log.info({ ...o }, 'issued workload SVID');
        } else {
          counts.refused++;
          log.warn({ ...o }, 'refused a certificate request');
        }
      },
    },
    config.listenHost,
    config.listenPort,
  );
  const renewServing = (): void => {
    serving = issueServingCertificate(root.authority, config.serverNames, Date.now());
    server.setCertificate(serving.certPem, serving.keyPem);
  };
  const daily = setInterval(renewServing, 86_400_000);
  daily.unref();
  let reloadTimer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => {
      loadRoot(config).then(
        (next) => {
          if (next.bundle.pem === root.bundle.pem && next.authority.pem === root.authority.pem)
            return;
          root = next;
          signer.setRoot(next);
          renewServing();
          publish();
          log.info(
            {
              signingRoot: next.authority.certificate.serialNumber.toLowerCase(),
              bundleRoots: next.bundle.roots.length,
            },
            'reloaded the cluster root',
          );
        },
        (err: unknown) =>
          log.error(
            { err: errorMessage(err) },
            'cannot reload the cluster root; keeping the current one',
          ),
      );
    }, 200);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(config.rootCertFile), dirname(config.rootKeyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, reload);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch (err) {
      log.warn(
        { dir, err: errorMessage(err) },
        'cannot watch the root directory; restart to reload',
      );
    }
  }
  process.on('SIGHUP', reload);
  log.info({ port: server.port, serverNames: config.serverNames }, 'meshless-ca ready');
  return {
    signer,
    server,
    port: server.port,
    counts,
    async stop() {
      clearInterval(daily);
      clearTimeout(publishTimer);
      clearTimeout(reloadTimer);
      process.off('SIGHUP', reload);
      for (const w of watchers) w.close();
      await server.close();
      discovery.close();
    },
  };
}
