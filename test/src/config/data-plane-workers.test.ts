import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  cpuQuotaOf,
  defaultDataPlaneWorkers,
  usableCpus,
} from '../../../src/config/data-plane-workers.js';

describe('data-plane worker default', () => {
  const quotas: [string | undefined, number | undefined][] = [
    [undefined, undefined],
    ['max 100000\n', undefined],
    ['200000 100000\n', 2],
    ['150000 100000', 2],
    ['50000 100000', 1],
    ['1000 100000', 1],
    ['0 100000', undefined],
    ['garbage', undefined],
    ['100000 0', undefined],
  ];
  for (const [text, cpus] of quotas)
    it(`cpu.max ${JSON.stringify(text)} -> ${String(cpus)} CPUs`, () =>
      assert.equal(cpuQuotaOf(text), cpus));

  const usable: [number, string | undefined, number][] = [
    [8, undefined, 8],
    [8, 'max 100000', 8],
    [8, '200000 100000', 2],
    [2, '800000 100000', 2],
    [1, undefined, 1],
    [0, undefined, 1],
  ];
  for (const [affinity, cpuMax, cpus] of usable)
    it(`affinity ${affinity}, cpu.max ${String(cpuMax)} -> ${cpus} usable`, () =>
      assert.equal(usableCpus(affinity, cpuMax), cpus));

  const defaults: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 2],
    [8, 2],
    [12, 3],
    [16, 4],
    [64, 16],
  ];
  for (const [cpus, workers] of defaults)
    it(`${cpus} CPUs -> ${workers} workers`, () =>
      assert.equal(defaultDataPlaneWorkers(cpus), workers));
});
