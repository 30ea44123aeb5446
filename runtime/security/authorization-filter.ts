// Authorization as the first filter of an inbound listener's chain: every request is decided
// against the policies in force when it arrives (a policy pushed by the control plane applies to
// the next request on open connections too), and a denied one gets the codec's own error reply
// (PERMISSION_DENIED), as Envoy's RBAC filter answers "RBAC: access denied".

import { BaseFilter, FilterStatus, type FilterStatusValue } from '../filter/filter';
import type { ActiveRequest } from '../proxy/active-request';
import { ErrorKind } from '../wasm/abi';
import { decide, type AuthorizationPolicy } from './authorization-policy';
import type { SecurityStats } from './security-stats';

export const AUTHORIZATION_FILTER = 'meltemi.authorization';

/** The policies in force: the static config's and the control plane's (replaced whole on each push). */
export class AuthorizationPolicies {
  private dynamicPolicies: readonly AuthorizationPolicy[] = [];
  private all: readonly AuthorizationPolicy[];

  constructor(readonly staticPolicies: readonly AuthorizationPolicy[]) {
    this.all = staticPolicies;
  }

  get current(): readonly AuthorizationPolicy[] {
    return this.all;
  }

  get dynamic(): readonly AuthorizationPolicy[] {
    return this.dynamicPolicies;
  }

  setDynamic(policies: readonly AuthorizationPolicy[]): void {
    this.dynamicPolicies = policies;
    this.all = [...this.staticPolicies, ...policies];
  }
}

export class AuthorizationFilter extends BaseFilter {
  readonly name = AUTHORIZATION_FILTER;

  constructor(private readonly policies: AuthorizationPolicies, private readonly listener: string, private readonly stats: SecurityStats) {
    super();
  }

  onRequest(req: ActiveRequest): FilterStatusValue {
    const policies = this.policies.current;
    if (policies.length === 0 || req.meta === null) return FilterStatus.CONTINUE;
    const decision = decide(policies, req.downstream.authorizationInput(req.meta));
    if (decision.allowed) {
      this.stats.decided(this.listener, 'allow');
      return FilterStatus.CONTINUE;
    }
    this.stats.decided(this.listener, 'deny');
    // Envoy's wording; the policy is named only in meltemi's own log and metrics, not to the client.
    req.rejectWith(ErrorKind.PERMISSION_DENIED, 'RBAC: access denied');
    return FilterStatus.LOCAL_REPLY;
  }
}
