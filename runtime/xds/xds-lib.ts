// The control agent's modules, loaded only by a proxy that talks xDS: gRPC and the Envoy protos
// cost about 25 MB of memory that a proxy without xDS, and every worker thread, does not carry.

export * as grpc from '@grpc/grpc-js';
export { RdsAgent } from './rds-agent';
export { AdsClient } from './ads-client';
export { LdsUpdater } from './lds-update';
export { clusterReferences } from './route-tunnel';
export { TYPE_LISTENER } from './envoy-protos';
