/**
 * The daemon's composition root: builds every service from the config, in
 * order, and tears them down in reverse. Nothing here decides anything.
 */
import { mkdir } from 'node:fs/promises';
import { pino } from 'pino';
import type { DaemonConfig } from '../src/config/daemon-config.js';
import { MeshlessError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { DiscoverySource } from '../src/discovery/discovery-source.js';
import { FileDiscoverySource } from '../src/discovery/file-source.js';
import { startCniApiServer } from './registration/cni-api-server.js';
import { RegistrationService } from './registration/registration-service.js';
import { Registry } from './registration/registry.js';

export interface RunningDaemon {
  readonly log: Logger;
  readonly registry: Registry;
  readonly service: RegistrationService;
  stop(): Promise<void>;
}

/** The effective config with nothing secret in it, for the start-up log and /config. */
export function redactedConfig(config: DaemonConfig): Record<string, unknown> {
  return {
    ...config,
    enrolmentLabel: `${config.enrolmentLabel.key}=${config.enrolmentLabel.value}`,
    // Paths are not secrets; key material is never part of the config.
    ca: { ...config.ca },
  };
}

function discoveryFor(config: DaemonConfig, log: Logger): DiscoverySource {
  if (config.discovery.source === 'file')
    return new FileDiscoverySource(config.discovery.file, log);
  throw new MeshlessError(
    'MESHLESS_E_CONFIG',
    'config key "discovery": the Kubernetes source is not available in this build; use "discovery.file"',
  );
}

export async function startDaemon(config: DaemonConfig, log?: Logger): Promise<RunningDaemon> {
  const logger: Logger =
    log ?? (pino({ level: config.logLevel, base: { node: config.nodeName } }) as unknown as Logger);
  logger.info({ config: redactedConfig(config) }, 'meshlessd starting');
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });

  const discovery = discoveryFor(config, logger);
  await discovery.start();
  const registry = new Registry(config.stateDir, logger);
  const dropped = await registry.load();
  for (const r of dropped)
    logger.info(
      { containerId: r.containerId, pod: `${r.namespace}/${r.podName}` },
      'dropped registration: netns is gone',
    );

  const service = new RegistrationService({
    nodeName: config.nodeName,
    trustDomain: config.trustDomain,
    policy: { label: config.enrolmentLabel, excludeNamespaces: config.excludeNamespaces },
    discovery,
    registry,
    log: logger.child({ component: 'registration' }),
  });
  await service.reattach();
  const api = await startCniApiServer(
    config.cniSocket,
    service,
    logger.child({ component: 'cni-api' }),
  );
  logger.info({ workloads: registry.size }, 'meshlessd ready');

  return {
    log: logger,
    registry,
    service,
    async stop() {
      await api.close();
      discovery.close();
      await registry.flush();
    },
  };
}
