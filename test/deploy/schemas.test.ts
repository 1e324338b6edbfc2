/**
 * Every object in deploy/ against the Kubernetes API's own schemas, as the
 * API server would check it on `kubectl apply` (field validation Strict, the
 * kubectl default since 1.27):
 *  - types, required fields, enums and formats: the OpenAPI schemas compiled
 *    into `kubernetes-models` (validate() of the model for apiVersion/kind);
 *  - unknown fields, which those schemas allow (no additionalProperties:
 *    false): the field lists of the OpenAPI types as @kubernetes/client-node
 *    generates them (getAttributeTypeMap), walked through the object.
 * Kinds that a CustomResourceDefinition in deploy/ defines are checked
 * against that CRD's openAPIV3Schema by the API server, not here: for them
 * only apiVersion/kind/metadata are checked.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

const DEPLOY = fileURLToPath(new URL('../../deploy', import.meta.url));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Doc {
  readonly where: string;
  readonly doc: Obj;
}

function deployDocs(): Doc[] {
  const out: Doc[] = [];
  for (const file of readdirSync(DEPLOY)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).forEach((d, i) => {
      const doc: unknown = d.toJS();
      if (doc === null) return;
      assert.ok(isObj(doc), `${file}#${i}: not a map`);
      out.push({
        where: `${file}#${i} ${String(doc.kind)}/${String(at(doc, 'metadata.name'))}`,
        doc,
      });
    });
  }
  return out;
}

function at(v: unknown, path: string): unknown {
  let cur = v;
  for (const k of path.split('.')) cur = isObj(cur) ? cur[k] : undefined;
  return cur;
}

// --- schema validation (kubernetes-models) -------------------------------------

interface ModelClass {
  new (data: Obj): { validate(): void };
}

/** The kubernetes-models class for apiVersion/kind ("v1" is the core group). */
async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind))
    return undefined;
  try {
    const mod = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<
      string,
      unknown
    >;
    return mod[kind] as ModelClass | undefined;
  } catch {
    return undefined;
  }
}

/** The schema errors of `doc`, or [] when it is valid. */
async function schemaErrors(doc: Obj): Promise<string[]> {
  const Model = await modelFor(String(doc.apiVersion), String(doc.kind));
  if (Model === undefined)
    return [`no Kubernetes schema for ${String(doc.apiVersion)} ${String(doc.kind)}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}

// --- unknown fields (@kubernetes/client-node's OpenAPI type maps) --------------

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}
interface TypeWithAttributes {
  getAttributeTypeMap(): Attribute[];
}
const generated = k8s as unknown as Record<string, unknown>;

function openApiType(name: string): TypeWithAttributes | undefined {
  const t = generated[name];
  return typeof t === 'function' && 'getAttributeTypeMap' in t
    ? (t as unknown as TypeWithAttributes)
    : undefined;
}

/** The generated type of a top-level object: apps/v1 DaemonSet -> V1DaemonSet. */
function rootType(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').at(-1) ?? '';
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/** Paths in `value` that its OpenAPI type `type` does not define. */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) {
    const inner = array[1];
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, inner, `${path}[${i}]`))
      : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) {
    const inner = map[1];
    return isObj(value)
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, inner, `${path}.${k}`))
      : [];
  }
  const t = openApiType(type);
  if (t === undefined || !isObj(value)) return []; // a primitive, IntOrString, free-form object
  const fields = new Map(t.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const ft = fields.get(k);
    return ft === undefined ? [`${path}.${k}`] : unknownFields(v, ft, `${path}.${k}`);
  });
}

/** What `kubectl apply` (Strict field validation) would refuse in `doc`. */
async function problems(doc: Obj, customKinds: ReadonlySet<string>): Promise<string[]> {
  const apiVersion = String(doc.apiVersion);
  const kind = String(doc.kind);
  if (customKinds.has(`${apiVersion.split('/')[0] ?? ''}/${kind}`)) {
    return typeof at(doc, 'metadata.name') === 'string' ? [] : ['metadata.name missing'];
  }
  const errors = await schemaErrors(doc);
  const type = rootType(apiVersion, kind);
  if (openApiType(type) === undefined) errors.push(`no OpenAPI type ${type} to check fields with`);
  else errors.push(...unknownFields(doc, type, '').map((p) => `unknown field ${p.slice(1)}`));
  return errors;
}

// --- tests -----------------------------------------------------------------------

const docs = deployDocs();
/** group/Kind of every kind the CRDs in deploy/ define. */
const customKinds = new Set(
  docs
    .filter((d) => d.doc.kind === 'CustomResourceDefinition')
    .map((d) => `${String(at(d.doc, 'spec.group'))}/${String(at(d.doc, 'spec.names.kind'))}`),
);

describe('deploy/ against the Kubernetes OpenAPI schemas', () => {
  it('finds the objects', () => {
    assert.ok(docs.length >= 5, `${docs.length} objects`);
  });

  for (const { where, doc } of docs)
    it(where, async () => {
      assert.deepEqual(await problems(doc, customKinds), []);
    });
});

describe('the schema check refuses what the API server refuses', () => {
  const ds = docs.find((d) => d.doc.kind === 'DaemonSet')?.doc;
  assert.ok(ds, 'a DaemonSet in deploy/');
  const mutated = (edit: (d: Obj) => void): Obj => {
    const copy = structuredClone(ds);
    edit(copy);
    return copy;
  };
  const firstContainer = (d: Obj): Obj => {
    const c = (at(d, 'spec.template.spec.containers') as unknown[])[0];
    assert.ok(isObj(c));
    return c;
  };

  const cases: [string, (d: Obj) => void, RegExp][] = [
    [
      'a misspelt field',
      (d) => {
        firstContainer(d)['readinesProbe'] = {};
      },
      /unknown field spec\.template\.spec\.containers\[0\]\.readinesProbe/,
    ],
    [
      'an unknown field in a nested type',
      (d) => {
        (at(d, 'spec.updateStrategy.rollingUpdate') as Obj)['maxSurges'] = 1;
      },
      /unknown field spec\.updateStrategy\.rollingUpdate\.maxSurges/,
    ],
    [
      'a port that is neither a number nor a name',
      (d) => {
        (at(firstContainer(d), 'readinessProbe.httpGet') as Obj)['port'] = [15021];
      },
      /httpGet\/port must be/,
    ],
    [
      'a missing required field',
      (d) => {
        delete (at(d, 'spec') as Obj)['selector'];
      },
      /spec must have required property '?selector'?/,
    ],
    [
      'a string where an integer is required',
      (d) => {
        (at(d, 'spec.template.spec') as Obj)['terminationGracePeriodSeconds'] = '30';
      },
      /terminationGracePeriodSeconds must be integer/,
    ],
  ];
  for (const [name, edit, expected] of cases)
    it(name, async () => {
      const found = await problems(mutated(edit), customKinds);
      assert.ok(
        found.some((p) => expected.test(p)),
        `expected ${String(expected)} in ${JSON.stringify(found)}`,
      );
    });

  it('an unknown kind', async () => {
    assert.match(
      (
        await problems({ apiVersion: 'v1', kind: 'Pods', metadata: { name: 'x' } }, customKinds)
      )[0] ?? '',
      /no Kubernetes schema for v1 Pods/,
    );
  });
});
