/**
 * Kubernetes label selectors (`metav1.LabelSelector`): `matchLabels` and
 * `matchExpressions` with the operators In, NotIn, Exists and DoesNotExist,
 * all ANDed. An empty selector selects everything; `null`/absent is for
 * the caller to interpret (a NetworkPolicy peer without a podSelector is
 * not the same as one with `{}`).
 *
 * Invariant: a malformed selector (unknown operator, In/NotIn without
 * values, Exists with values) is an error, never "selects everything".
 */

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

/** A parsed selector: requirements, all of which must hold. */
export interface LabelSelector {
  readonly requirements: readonly LabelRequirement[];
}

export const EVERYTHING: LabelSelector = { requirements: [] };

export type Labels = Readonly<Record<string, string>>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a LabelSelector; returns the problem (naming `where`) as a string when malformed. */
export function parseLabelSelector(raw: unknown, where: string): LabelSelector | string {
  if (raw === undefined || raw === null) return EVERYTHING;
  if (!isRecord(raw)) return `${where} is not an object`;
  const requirements: LabelRequirement[] = [];
  const ml = raw['matchLabels'];
  if (ml !== undefined && ml !== null) {
    if (!isRecord(ml)) return `${where}.matchLabels is not an object`;
    for (const [key, value] of Object.entries(ml)) {
      if (typeof value !== 'string') return `${where}.matchLabels.${key} is not a string`;
      requirements.push({ key, operator: 'In', values: [value] });
    }
  }
  const me = raw['matchExpressions'];
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) return `${where}.matchExpressions is not a list`;
    for (const [i, e] of me.entries()) {
      const at = `${where}.matchExpressions[${i}]`;
      if (!isRecord(e)) return `${at} is not an object`;
      const key = e['key'];
      const operator = e['operator'];
      const values = e['values'] ?? [];
      if (typeof key !== 'string' || key === '') return `${at}.key is missing`;
      if (
        operator !== 'In' &&
        operator !== 'NotIn' &&
        operator !== 'Exists' &&
        operator !== 'DoesNotExist'
      )
        return `${at}.operator "${String(operator)}" is not In, NotIn, Exists or DoesNotExist`;
      if (!Array.isArray(values) || !values.every((v): v is string => typeof v === 'string'))
        return `${at}.values is not a list of strings`;
      if ((operator === 'In' || operator === 'NotIn') && values.length === 0)
        return `${at}: ${operator} needs values`;
      if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0)
        return `${at}: ${operator} takes no values`;
      requirements.push({ key, operator, values });
    }
  }
  for (const k of Object.keys(raw))
    if (k !== 'matchLabels' && k !== 'matchExpressions')
      return `${where}.${k} is not a selector field`;
  return { requirements };
}

/** Whether `labels` satisfy every requirement of `selector`. */
export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const r of selector.requirements) {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'In':
        if (!has || !r.values.includes(labels[r.key] as string)) return false;
        break;
      case 'NotIn':
        if (has && r.values.includes(labels[r.key] as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The selector as `kubectl` prints it (`app=web,tier in (a,b),!x`). */
export function formatSelector(selector: LabelSelector): string {
  if (selector.requirements.length === 0) return '<all>';
  return selector.requirements
    .map((r) => {
      switch (r.operator) {
        case 'In':
          return r.values.length === 1
            ? `${r.key}=${r.values[0]}`
            : `${r.key} in (${r.values.join(',')})`;
        case 'NotIn':
          return `${r.key} notin (${r.values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
      }
      return '';
    })
    .join(',');
}
