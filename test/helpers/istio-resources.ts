// YAML for Istio resources in tests: a ServiceEntry with MetaProtocol ports and labelled
// endpoints, and a DestinationRule with v1/v2 subsets.

export const SE = (host: string, port: number, protoName: string, endpoints: Array<{ address: string; port: number; version: string }>) => `
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: { name: ${host.split('.')[0]} }
spec:
  hosts: [ ${host} ]
  ports: [ { number: ${port}, name: tcp-metaprotocol-${protoName}-svc, protocol: TCP } ]
  resolution: STATIC
  endpoints:
${endpoints.map((e) => `    - { address: ${e.address}, ports: { tcp-metaprotocol-${protoName}-svc: ${e.port} }, labels: { version: ${e.version} } }`).join('\n')}
`;
export const DR = (host: string, hashKey?: string) => `
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: ${host.split('.')[0]} }
spec:
  host: ${host}
${hashKey ? `  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: ${hashKey} } } }\n` : ''}  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;

