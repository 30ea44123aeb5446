// Which kinds the control plane reads, which it recognises and passes over, and the fields of
// each that it knows. A field or kind it does not know is an error (a typo such as `atributes`
// or `MetaRoutr` must not silently change routing); a real Istio/Aeraki field that meltemi does
// not act on yet is a note, so the author knows it has no effect.

/** apiVersion groups whose kinds meltemi knows; any other kind in them is a typo. */
export const GROUPS: Record<string, { versions: readonly string[]; kinds: readonly string[] }> = {
  'metaprotocol.aeraki.io': { versions: ['v1alpha1'], kinds: ['MetaRouter', 'ApplicationProtocol'] },
  'networking.istio.io': {
    versions: ['v1alpha3', 'v1beta1', 'v1'],
    kinds: ['ServiceEntry', 'DestinationRule', 'VirtualService', 'Gateway', 'Sidecar', 'WorkloadEntry', 'WorkloadGroup', 'EnvoyFilter', 'ProxyConfig'],
  },
  'security.istio.io': { versions: ['v1beta1', 'v1'], kinds: ['AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication'] },
};

/** The kinds the control plane builds from; the other kinds of GROUPS are passed over. */
export const READ_KINDS = ['MetaRouter', 'ApplicationProtocol', 'ServiceEntry', 'DestinationRule', 'AuthorizationPolicy'] as const;
export type ReadKind = typeof READ_KINDS[number];

/** Fields at the top of any Kubernetes object. */
export const OBJECT_FIELDS = { read: ['apiVersion', 'kind', 'metadata', 'spec'], ignored: ['status'] };

/** Per object path: fields read, and fields that are valid but have no effect in meltemi. */
export interface FieldSet { read: readonly string[]; ignored: readonly string[] }

export const SPEC_FIELDS: Record<string, FieldSet> = {
  MetaRouter: { read: ['hosts', 'routes', 'localRateLimit'], ignored: ['gateways', 'globalRateLimit', 'exportTo'] },
  'MetaRouter.localRateLimit': { read: ['tokenBucket', 'conditions'], ignored: [] },
  'MetaRouter.tokenBucket': { read: ['maxTokens', 'tokensPerFill', 'fillInterval'], ignored: [] },
  'MetaRouter.rateLimitCondition': { read: ['match', 'tokenBucket'], ignored: [] },
  'MetaRouter.route': { read: ['name', 'match', 'route', 'mirror', 'mirrorPercentage', 'requestMutation'], ignored: ['responseMutation'] },
  'MetaRouter.match': { read: ['attributes'], ignored: [] },
  'MetaRouter.destination': { read: ['destination', 'weight'], ignored: [] },
  // `location` and `protocol` change nothing for a MetaProtocol port (its name selects the
  // protocol); `resolution` is read: meltemi serves STATIC endpoints.
  // `addresses`: the first one that is a loopback address is where the service's listener binds.
  ServiceEntry: { read: ['hosts', 'addresses', 'ports', 'endpoints', 'location', 'resolution'], ignored: ['workloadSelector', 'exportTo', 'subjectAltNames'] },
  'ServiceEntry.port': { read: ['number', 'name', 'targetPort', 'protocol'], ignored: [] },
  'ServiceEntry.endpoint': { read: ['address', 'ports', 'labels'], ignored: ['network', 'locality', 'weight', 'serviceAccount'] },
  DestinationRule: { read: ['host', 'trafficPolicy', 'subsets'], ignored: ['exportTo', 'workloadSelector'] },
  'DestinationRule.subset': { read: ['name', 'labels', 'trafficPolicy'], ignored: [] },
  'DestinationRule.trafficPolicy': { read: ['loadBalancer', 'connectionPool', 'outlierDetection'], ignored: ['tls', 'portLevelSettings', 'tunnel', 'proxyProtocol'] },
  'DestinationRule.outlierDetection': { read: ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent', 'interval'], ignored: ['consecutiveErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures'] },
  'DestinationRule.connectionPool': { read: ['tcp', 'http'], ignored: [] },
  'DestinationRule.connectionPool.tcp': { read: ['maxConnections', 'connectTimeout'], ignored: ['tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'] },
  'DestinationRule.connectionPool.http': { read: ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries'], ignored: ['maxRequestsPerConnection', 'idleTimeout', 'h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams'] },
  'DestinationRule.loadBalancer': { read: ['consistentHash', 'simple'], ignored: ['localityLbSetting', 'warmupDurationSecs', 'warmup'] },
  'DestinationRule.consistentHash': { read: ['httpHeaderName'], ignored: ['httpCookie', 'useSourceIp', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize'] },
  ApplicationProtocol: { read: ['protocol', 'codec'], ignored: [] },
  // Read field by field by the AuthorizationPolicy reader (runtime/security/authorization-policy.ts).
  AuthorizationPolicy: { read: ['selector', 'action', 'rules', 'provider', 'targetRef', 'targetRefs'], ignored: [] },
};
