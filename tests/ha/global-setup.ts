// Starts a Redis Sentinel topology and a Redis Cluster for the shared-store contracts of the failover suite, and
// stops them after the run.
import type { TestProject } from 'vitest/node';
import { startRedisCluster, startSentinelTopology } from '../support/topologies.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The failover suite: where the contracts find a Sentinel-named primary and a Cluster. */
    haRedis?: { sentinels: string; sentinelName: string; clusterNodes: string };
  }
}

export default async function setup(project: TestProject) {
  const [sentinel, cluster] = await Promise.all([startSentinelTopology(), startRedisCluster()]);
  project.provide('haRedis', { sentinels: sentinel.sentinelsSetting, sentinelName: sentinel.name, clusterNodes: cluster.nodesSetting });
  project.provide('runId', 'ha');
  return async () => {
    await Promise.all([sentinel.stop(), cluster.stop()]);
  };
}
