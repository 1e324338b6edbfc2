import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RECORD_KEY,
  insertEntry,
  parseCniConfig,
  removeEntry,
  renderConfig,
  wrapConfIntoConflist,
} from '../../../src/installer/conflist-edit.js';
import { buildEntry } from '../../../src/installer/entry.js';
import { MeshlessError } from '../../../src/errors.js';
import { assertGolden, readTestdata } from './golden.js';

const ENTRY = buildEntry({
  socketPath: '/var/run/meshless/cni.sock',
  kubeconfig: '/etc/cni/net.d/meshless-kubeconfig',
  excludeNamespaces: ['kube-system', 'istio-system'],
  logLevel: 'info',
});

/** Types of the plugins in a conflist's text, in order. */
function pluginTypes(text: string): unknown[] {
  const config = parseCniConfig(text, { fileName: 'x.conflist' });
  assert.equal(config.kind, 'conflist');
  return config.kind === 'conflist' ? config.plugins.map((p) => p.type) : [];
}

interface GoldenCase {
  /** Input file in testdata/ and the prefix of its goldens. */
  readonly input: string;
  /** The name it has in the conf dir. */
  readonly fileName: string;
  readonly installedAs: string;
  readonly installedTypes: readonly string[];
  /** Whether uninstall gives the input back byte for byte. */
  readonly restoresInput: boolean;
  readonly uninstalledAs: string;
}

const CASES: readonly GoldenCase[] = [
  {
    input: 'bridge.conf',
    fileName: '10-bridge.conf',
    installedAs: '10-bridge.conflist',
    installedTypes: ['bridge', 'meshless-cni'],
    restoresInput: true,
    uninstalledAs: '10-bridge.conf',
  },
  {
    input: 'bridge-portmap.conflist',
    fileName: '10-podnet.conflist',
    installedAs: '10-podnet.conflist',
    installedTypes: ['bridge', 'portmap', 'meshless-cni'],
    restoresInput: true,
    uninstalledAs: '10-podnet.conflist',
  },
  {
    // An older entry of ours, not last, and no record: uninstall can only
    // remove our entry, not bring back bytes it never saw.
    input: 'already-installed.conflist',
    fileName: '10-flannel.conflist',
    installedAs: '10-flannel.conflist',
    installedTypes: ['bridge', 'portmap', 'meshless-cni'],
    restoresInput: false,
    uninstalledAs: '10-flannel.conflist',
  },
];

describe('insertEntry / removeEntry golden files', () => {
  for (const c of CASES) {
    describe(c.input, () => {
      const input = readTestdata(c.input);
      const installed = insertEntry(input, ENTRY, { fileName: c.fileName });

      it('install matches the golden file', () => {
        assertGolden(`${c.input}.install.golden`, installed.text);
        assert.equal(installed.fileName, c.installedAs);
        assert.equal(installed.replaces, c.installedAs === c.fileName ? undefined : c.fileName);
        assert.equal(installed.changed, true);
        assert.deepEqual(pluginTypes(installed.text), c.installedTypes);
        assert.deepEqual(installed.warnings, []);
      });

      it('install twice leaves identical bytes and one entry of ours', () => {
        const again = insertEntry(installed.text, ENTRY, { fileName: installed.fileName });
        assert.equal(again.text, installed.text);
        assert.equal(again.changed, false);
        assert.equal(again.fileName, installed.fileName);
        assert.equal(again.replaces, undefined);
      });

      const uninstalled = removeEntry(installed.text, { fileName: installed.fileName });

      it('uninstall matches the golden file', () => {
        assertGolden(`${c.input}.uninstall.golden`, uninstalled.text);
        assert.equal(uninstalled.fileName, c.uninstalledAs);
        assert.equal(
          uninstalled.replaces,
          c.uninstalledAs === installed.fileName ? undefined : installed.fileName,
        );
        if (c.restoresInput) assert.equal(uninstalled.text, input, 'original bytes restored');
        assert.ok(!uninstalled.text.includes('meshless'));
      });

      it('uninstall twice changes nothing', () => {
        const again = removeEntry(uninstalled.text, { fileName: uninstalled.fileName });
        assert.equal(again.changed, false);
        assert.equal(again.text, uninstalled.text);
      });
    });
  }
});

describe('removeEntry on a config edited after install', () => {
  const input = readTestdata('edited-after-install.conflist');
  const result = removeEntry(input, { fileName: '10-bridge.conflist' });

  it('keeps their change as a conflist, drops our entry and record, and says so', () => {
    assertGolden('edited-after-install.conflist.uninstall.golden', result.text);
    assert.equal(result.fileName, '10-bridge.conflist');
    assert.equal(result.replaces, undefined);
    assert.deepEqual(pluginTypes(result.text), ['bridge', 'tuning']);
    assert.ok(!result.text.includes(RECORD_KEY));
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? '', /changed since meshless was installed.*10-bridge\.conf/);
  });

  it('install keeps their change and drops the stale record', () => {
    const installed = insertEntry(input, ENTRY, { fileName: '10-bridge.conflist' });
    assert.deepEqual(pluginTypes(installed.text), ['bridge', 'tuning', 'meshless-cni']);
    assert.ok(!installed.text.includes(RECORD_KEY));
    assert.equal(installed.warnings.length, 1);
  });
});

describe('insertEntry with new options replaces our entry', () => {
  it('updates the entry in place at the end, keeping the record', () => {
    const input = readTestdata('bridge.conf');
    const first = insertEntry(input, ENTRY, { fileName: '10-bridge.conf' });
    const other = buildEntry({ socketPath: '/run/m.sock' });
    const second = insertEntry(first.text, other, { fileName: first.fileName });
    assert.equal(second.changed, true);
    assert.deepEqual(pluginTypes(second.text), ['bridge', 'meshless-cni']);
    assert.match(second.text, /"socketPath": "\/run\/m\.sock"/);
    assert.doesNotMatch(second.text, /excludeNamespaces/);
    const restored = removeEntry(second.text, { fileName: second.fileName });
    assert.equal(restored.text, input);
    assert.equal(restored.fileName, '10-bridge.conf');
  });
});

describe('wrapConfIntoConflist', () => {
  it('moves cniVersion and name up and keeps the rest as plugins[0]', () => {
    const conf = { cniVersion: '0.3.1', name: 'n', type: 'ptp', mtu: 1400 };
    assert.deepEqual(wrapConfIntoConflist(conf, { fileName: '10-ptp.conf' }), {
      cniVersion: '0.3.1',
      name: 'n',
      plugins: [{ type: 'ptp', mtu: 1400 }],
    });
  });

  it('names the list after the file when the conf has no name', () => {
    const list = wrapConfIntoConflist({ type: 'ptp' }, { fileName: '10-ptp.json' });
    assert.equal(list.name, '10-ptp');
    assert.equal('cniVersion' in list, false);
  });

  it('records the original text when given', () => {
    const list = wrapConfIntoConflist({ type: 'ptp' }, { fileName: 'a.conf', originalText: 'X' });
    assert.deepEqual(list[RECORD_KEY], { file: 'a.conf', content: 'X' });
  });

  it('a wrapped .json becomes <base>.conflist', () => {
    const r = insertEntry('{"cniVersion":"1.0.0","name":"j","type":"ptp"}', ENTRY, {
      fileName: '99-j.json',
    });
    assert.equal(r.fileName, '99-j.conflist');
    assert.equal(r.replaces, '99-j.json');
  });
});

describe('renderConfig', () => {
  it('writes 2-space JSON with a trailing newline', () => {
    assert.equal(renderConfig({ a: [1] }), '{\n  "a": [\n    1\n  ]\n}\n');
  });
});

describe('bad configs', () => {
  const table: readonly { name: string; fileName: string; text: string; error: RegExp }[] = [
    {
      name: 'invalid JSON',
      fileName: 'a.conflist',
      text: '{"plugins": [',
      error: /^\/etc\/cni\/net\.d\/a\.conflist is not valid JSON/,
    },
    {
      name: 'not an object',
      fileName: 'a.conflist',
      text: '[]',
      error: /a\.conflist must hold a JSON object/,
    },
    {
      name: 'conflist without plugins',
      fileName: 'a.conflist',
      text: '{"name":"x"}',
      error: /a\.conflist has no "plugins" array/,
    },
    {
      name: 'plugins not an array',
      fileName: 'a.conflist',
      text: '{"plugins":{}}',
      error: /no "plugins" array/,
    },
    {
      name: 'empty plugins',
      fileName: 'a.conflist',
      text: '{"plugins":[]}',
      error: /empty "plugins" list/,
    },
    {
      name: 'plugin without type',
      fileName: 'a.conflist',
      text: '{"plugins":[{"type":"x"},{}]}',
      error: /plugins\[1\] is not an object with a "type"/,
    },
    {
      name: 'conf without type',
      fileName: 'a.conf',
      text: '{"name":"x"}',
      error: /a\.conf has no "type"/,
    },
    {
      name: 'conflist in a .conf',
      fileName: 'a.conf',
      text: '{"plugins":[{"type":"x"}]}',
      error: /looks like a conflist/,
    },
    { name: 'empty file', fileName: 'a.json', text: '', error: /a\.json is not valid JSON/ },
  ];
  for (const t of table) {
    it(`${t.name}: install and uninstall both refuse, naming the file`, () => {
      for (const edit of [
        () =>
          insertEntry(t.text, ENTRY, {
            fileName: t.fileName,
            path: `/etc/cni/net.d/${t.fileName}`,
          }),
        () => removeEntry(t.text, { fileName: t.fileName, path: `/etc/cni/net.d/${t.fileName}` }),
      ]) {
        assert.throws(edit, (err: unknown) => {
          assert.ok(err instanceof MeshlessError);
          assert.equal(err.code, 'MESHLESS_E_INSTALL');
          assert.match(err.message, t.error);
          assert.match(err.message, /\/etc\/cni\/net\.d\//);
          return true;
        });
      }
    });
  }

  it('uninstall refuses to leave an empty plugins list it cannot restore', () => {
    const text = '{"name":"x","plugins":[{"type":"meshless-cni","socketPath":"/s"}]}';
    assert.throws(() => removeEntry(text, { fileName: 'a.conflist' }), /no plugins left/);
  });
});
