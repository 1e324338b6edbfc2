import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigFlag } from '../../../src/config/config-flag.js';

describe('parseConfigFlag', () => {
  const env = { MESHLESS_CONFIG: '/from/env.yaml' };
  const cases: { args: string[]; env?: Record<string, string>; want: unknown }[] = [
    { args: ['--config', '/a.yaml'], want: { kind: 'config', file: '/a.yaml' } },
    { args: ['-c', '/a.yaml'], env, want: { kind: 'config', file: '/a.yaml' } },
    { args: [], env, want: { kind: 'config', file: '/from/env.yaml' } },
    { args: [], want: { kind: 'config', file: undefined } },
    { args: ['--help'], want: { kind: 'help' } },
    { args: ['-h', '--config', '/a.yaml'], want: { kind: 'help' } },
  ];
  for (const c of cases)
    it(`${c.args.join(' ') || '(none)'}${c.env ? ' with the env var' : ''}`, () =>
      assert.deepEqual(parseConfigFlag(c.args, c.env ?? {}, 'MESHLESS_CONFIG'), c.want));

  for (const args of [['--bogus'], ['--config'], ['stray']])
    it(`refuses ${args.join(' ')}`, () =>
      assert.throws(() => parseConfigFlag(args, {}, 'MESHLESS_CONFIG'), TypeError));
});
