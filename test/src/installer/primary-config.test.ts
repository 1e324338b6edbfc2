import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { choosePrimaryConfig, isConfigFileName } from '../../../src/installer/primary-config.js';

describe('choosePrimaryConfig', () => {
  const table: readonly {
    name: string;
    files: readonly string[];
    named?: string;
    want: string | RegExp;
  }[] = [
    { name: 'single conflist', files: ['10-flannel.conflist'], want: '10-flannel.conflist' },
    { name: 'lexically first wins', files: ['20-b.conf', '10-a.conflist'], want: '10-a.conflist' },
    {
      name: '.conf sorts before its .conflist',
      files: ['10-x.conflist', '10-x.conf'],
      want: '10-x.conf',
    },
    { name: '.json counts', files: ['99-z.conf', '05-k.json'], want: '05-k.json' },
    {
      name: 'byte order, not locale: upper case first',
      files: ['a.conf', 'B.conf'],
      want: 'B.conf',
    },
    {
      name: 'digits before letters',
      files: ['calico.conflist', '10-calico.conflist'],
      want: '10-calico.conflist',
    },
    {
      name: 'ignores other extensions, hidden files and our temp files',
      files: [
        '00-notes.txt',
        '.00-hidden.conf',
        '.10-x.conflist.meshless-tmp-1a2b3c4d',
        '05-x.conf.bak',
        'meshless-kubeconfig',
        '10-x.conflist',
      ],
      want: '10-x.conflist',
    },
    {
      name: 'named file',
      files: ['10-a.conf', '20-b.conflist'],
      named: '20-b.conflist',
      want: '20-b.conflist',
    },
    {
      name: 'named .conf already wrapped',
      files: ['10-a.conflist'],
      named: '10-a.conf',
      want: '10-a.conflist',
    },
    {
      name: 'named .conflist already restored',
      files: ['10-a.conf'],
      named: '10-a.conflist',
      want: '10-a.conf',
    },
    { name: 'empty dir', files: [], want: /no CNI network config .* in \/etc\/cni\/net\.d/ },
    {
      name: 'only non-configs',
      files: ['README', '.x.conf', 'conf'],
      want: /no CNI network config/,
    },
    {
      name: 'named file missing',
      files: ['10-a.conf'],
      named: '20-b.conflist',
      want: /20-b\.conflist not found/,
    },
    {
      name: 'named path, not a name',
      files: ['10-a.conf'],
      named: '../10-a.conf',
      want: /must be a file name/,
    },
    {
      name: 'named non-config',
      files: ['x.txt'],
      named: 'x.txt',
      want: /must be a file name .* ending in/,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const run = () => choosePrimaryConfig(t.files, t.named, '/etc/cni/net.d');
      if (typeof t.want === 'string') assert.equal(run(), t.want);
      else
        assert.throws(run, (err: unknown) => {
          assert.ok(err instanceof Error && 'code' in err);
          assert.equal(err.code, 'MESHLESS_E_INSTALL');
          assert.match(err.message, t.want as RegExp);
          return true;
        });
    });
  }
});

describe('isConfigFileName', () => {
  for (const [name, want] of [
    ['10-a.conf', true],
    ['10-a.conflist', true],
    ['10-a.json', true],
    ['.conf', false],
    ['.10-a.conf', false],
    ['10-a.conf.meshless-tmp-00', false],
  ] as const)
    it(`${name} -> ${want}`, () => assert.equal(isConfigFileName(name), want));
});
