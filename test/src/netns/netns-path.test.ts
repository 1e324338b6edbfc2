import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { daemonNetnsPath } from '../../../src/netns/netns-path.js';

describe('daemonNetnsPath', () => {
  const cases: [string, string | undefined, string][] = [
    ['/var/run/netns/cni-1234', '/host/proc', '/var/run/netns/cni-1234'],
    ['/proc/4242/ns/net', '/host/proc', '/host/proc/4242/ns/net'],
    ['/proc/4242/ns/net', '/host/proc/', '/host/proc/4242/ns/net'],
    ['/proc/4242/ns/net', undefined, '/proc/4242/ns/net'],
    ['/procfs/1/ns/net', '/host/proc', '/procfs/1/ns/net'],
  ];
  for (const [runtime, hostProc, want] of cases)
    it(`${runtime} with hostProcPath ${String(hostProc)} -> ${want}`, () => {
      assert.equal(daemonNetnsPath(runtime, hostProc), want);
    });
});
