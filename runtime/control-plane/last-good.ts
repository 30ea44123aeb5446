// An invalid resource must not change routing. When a document fails validation, the control
// plane keeps serving the last good version of that resource: found by its identity
// (`Kind/namespace/name`), or, when the kind or name itself is what broke, by where it was (same
// file and document). A file that cannot be read or parsed keeps all of its last good resources.
// A MetaRouter that was never good withholds its host's routes rather than falling back to the
// default route: the author asked for routing that meltemi cannot give yet.

import { keyOf, type Resource } from './resources';
import type { Located, ResourceError } from './resource-source';

export interface Merged {
  /** What is served: the valid resources and the last good versions kept in place of failures. */
  readonly resources: Located[];
  /** Keys of the resources kept from an earlier snapshot, each with the error that kept it. */
  readonly kept: Array<{ key: string; error: ResourceError }>;
  /** Hosts whose MetaRouter never validated: their route configurations are not served. */
  readonly withheldHosts: Set<string>;
}

export const identityOf = (r: Resource) => keyOf(r.kind, r.namespace, r.name);

export function mergeLastGood(current: readonly Located[], errors: readonly ResourceError[], lastGood: readonly Located[]): Merged {
  const resources = [...current];
  const present = new Set(current.map((l) => identityOf(l.resource)));
  const kept: Merged['kept'] = [];
  const withheldHosts = new Set<string>();
  const keep = (l: Located, error: ResourceError): boolean => {
    const key = identityOf(l.resource);
    if (present.has(key)) return false;
    present.add(key);
    resources.push(l);
    kept.push({ key, error });
    return true;
  };
  for (const error of errors) {
    if (error.document === undefined) {
      for (const l of lastGood) if (l.file === error.file) keep(l, error);
      continue;
    }
    const previous = (error.key !== undefined ? lastGood.find((l) => identityOf(l.resource) === error.key) : undefined)
      ?? lastGood.find((l) => l.file === error.file && l.document === error.document);
    if (previous) {
      keep(previous, error);
      continue;
    }
    if (error.host !== undefined && error.kind === 'MetaRouter') withheldHosts.add(error.host);
  }
  // A host that has a good MetaRouter (kept or current) is routed by it.
  for (const l of resources) if (l.resource.kind === 'MetaRouter') withheldHosts.delete(l.resource.host);
  return { resources, kept, withheldHosts };
}
