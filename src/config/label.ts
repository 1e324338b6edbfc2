/**
 * The enrolment label: one `key=value` requirement on a namespace's labels,
 * with Kubernetes' syntax rules for label keys and values.
 */
import { MeshlessError } from '../errors.js';

export interface LabelRequirement {
  readonly key: string;
  readonly value: string;
}

// Optional DNS-subdomain prefix, then a name of at most 63 characters.
const KEY =
  /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses `key=value` (Kubernetes label syntax). */
export function parseLabelSelector(text: string): LabelRequirement {
  const eq = text.indexOf('=');
  const key = eq < 0 ? '' : text.slice(0, eq);
  const value = eq < 0 ? '' : text.slice(eq + 1);
  if (eq < 0 || !KEY.test(key) || !VALUE.test(value))
    throw new MeshlessError(
      'MESHLESS_E_CONFIG',
      `"${text}" is not a label requirement "key=value" with a valid Kubernetes label key and value`,
    );
  return { key, value };
}

/** True when `labels` satisfy the requirement. */
export function matchesLabel(
  labels: Readonly<Record<string, string>> | undefined,
  req: LabelRequirement,
): boolean {
  return labels?.[req.key] === req.value;
}

export function formatLabel(req: LabelRequirement): string {
  return `${req.key}=${req.value}`;
}
