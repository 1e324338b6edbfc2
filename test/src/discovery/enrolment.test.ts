import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NamespaceInfo, PodInfo } from '../../../src/discovery/cluster-state.js';
import { decideEnrolment, type EnrolmentPolicy } from '../../../src/discovery/enrolment.js';

const DEFAULT: EnrolmentPolicy = {
  label: { key: 'io.cilium/mtls-enabled', value: 'true' },
  excludeNamespaces: ['kube-system'],
};
const CUSTOM: EnrolmentPolicy = {
  label: { key: 'example.org/mesh', value: 'on' },
  excludeNamespaces: ['infra', 'monitoring'],
};

const ns = (name: string, labels: Record<string, string> = {}): NamespaceInfo => ({ name, labels });
const pod = (namespace: string, hostNetwork = false): PodInfo => ({
  namespace,
  name: 'p',
  uid: 'u',
  labels: {},
  serviceAccount: 'default',
  nodeName: 'node-a',
  hostNetwork,
  ips: [],
  containerPorts: {},
});
const ENROLLED = { 'io.cilium/mtls-enabled': 'true' };

describe('decideEnrolment', () => {
  const table: [
    string,
    EnrolmentPolicy,
    string,
    NamespaceInfo | undefined,
    PodInfo | undefined,
    string,
    RegExp,
  ][] = [
    [
      'labelled namespace',
      DEFAULT,
      'demo',
      ns('demo', ENROLLED),
      pod('demo'),
      'enrolled',
      /has io\.cilium\/mtls-enabled=true/,
    ],
    [
      'labelled namespace, pod not known',
      DEFAULT,
      'demo',
      ns('demo', ENROLLED),
      undefined,
      'enrolled',
      /has/,
    ],
    [
      'label missing',
      DEFAULT,
      'demo',
      ns('demo'),
      pod('demo'),
      'not-enrolled',
      /lacks io\.cilium\/mtls-enabled=true/,
    ],
    [
      'label false',
      DEFAULT,
      'demo',
      ns('demo', { 'io.cilium/mtls-enabled': 'false' }),
      pod('demo'),
      'not-enrolled',
      /lacks/,
    ],
    [
      'excluded namespace even when labelled',
      DEFAULT,
      'kube-system',
      ns('kube-system', ENROLLED),
      pod('kube-system'),
      'not-enrolled',
      /excluded/,
    ],
    [
      'excluded namespace not known to discovery',
      DEFAULT,
      'kube-system',
      undefined,
      undefined,
      'not-enrolled',
      /excluded/,
    ],
    [
      'host-network pod in a labelled namespace',
      DEFAULT,
      'demo',
      ns('demo', ENROLLED),
      pod('demo', true),
      'not-enrolled',
      /host-network/,
    ],
    [
      'host-network pod, namespace unknown',
      DEFAULT,
      'demo',
      undefined,
      pod('demo', true),
      'not-enrolled',
      /host-network/,
    ],
    [
      'namespace unknown',
      DEFAULT,
      'demo',
      undefined,
      pod('demo'),
      'unknown',
      /not known to discovery/,
    ],
    ['namespace and pod unknown', DEFAULT, 'demo', undefined, undefined, 'unknown', /not known/],
    [
      'custom label matches',
      CUSTOM,
      'demo',
      ns('demo', { 'example.org/mesh': 'on' }),
      pod('demo'),
      'enrolled',
      /example\.org\/mesh=on/,
    ],
    [
      'custom label: the default label does not count',
      CUSTOM,
      'demo',
      ns('demo', ENROLLED),
      pod('demo'),
      'not-enrolled',
      /lacks example\.org\/mesh=on/,
    ],
    [
      'custom label, other value',
      CUSTOM,
      'demo',
      ns('demo', { 'example.org/mesh': 'off' }),
      pod('demo'),
      'not-enrolled',
      /lacks/,
    ],
    [
      'custom exclusions',
      CUSTOM,
      'monitoring',
      ns('monitoring', { 'example.org/mesh': 'on' }),
      pod('monitoring'),
      'not-enrolled',
      /excluded/,
    ],
    [
      'kube-system is not excluded by a custom list',
      CUSTOM,
      'kube-system',
      ns('kube-system', { 'example.org/mesh': 'on' }),
      pod('kube-system'),
      'enrolled',
      /has/,
    ],
  ];
  for (const [name, policy, nsName, namespace, p, kind, reason] of table)
    it(name, () => {
      const d = decideEnrolment(policy, nsName, namespace, p);
      assert.equal(d.kind, kind);
      assert.match(d.reason, reason);
    });
});
