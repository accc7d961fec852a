import type * as k8s from '@kubernetes/client-node';
import { GAVE_UP_EXIT_CODE, OOM_EXIT_CODE } from '../agent-supervisor.ts';
import { CONTAINER } from './workspace-objects.ts';

/** Waiting reasons that do not pass by themselves: the user must be told (Kubernetes' own words). */
const STUCK_WAITING = new Set(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'CrashLoopBackOff']);

/** How a pod looks to the driver: up (the container runs), on its way, or stuck with Kubernetes' reason. */
export type PodJudgement =
  | { state: 'up'; startKey: string }
  | { state: 'pending' }
  | { state: 'error'; reason: string };

function terminatedWords(t: k8s.V1ContainerStateTerminated, memoryLimit: string | undefined): string {
  if (t.reason === 'OOMKilled' || t.exitCode === OOM_EXIT_CODE) {
    return `OOMKilled: a process of the workspace went over its memory limit${memoryLimit ? ` (${memoryLimit})` : ''} and the kernel killed it; start the workspace again (or give it more memory)`;
  }
  if (t.exitCode === GAVE_UP_EXIT_CODE) return 'the agent crashed 5 times in a row, each soon after it started; see the pod\'s log (kubectl logs), then start the workspace again';
  return `${t.reason ?? 'Error'}: the container exited with code ${t.exitCode}${t.message ? ` (${t.message})` : ''}`;
}

/**
 * The state of a workspace's pod, in Kubernetes' words when it is stuck: evicted, OOM-killed,
 * unable to pull its image, crash-looping. Init containers count too (the runtime image may be
 * the one that cannot be pulled).
 */
export function judgePod(pod: k8s.V1Pod): PodJudgement {
  const status = pod.status ?? {};
  if (pod.metadata?.deletionTimestamp) return { state: 'pending' };
  if (status.phase === 'Failed') {
    const reason = status.reason ?? 'Failed';
    return { state: 'error', reason: `${reason}: ${status.message ?? 'the pod failed'}` };
  }
  const memoryLimit = pod.spec?.containers.find((c) => c.name === CONTAINER)?.resources?.limits?.memory;
  for (const c of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    if (waiting?.reason && STUCK_WAITING.has(waiting.reason)) {
      const last = c.lastState?.terminated;
      const why = last ? ` (last exit: ${terminatedWords(last, memoryLimit)})` : '';
      return { state: 'error', reason: `${waiting.reason}: ${waiting.message ?? `container "${c.name}" cannot start`}${why}` };
    }
    if (c.state?.terminated && c.name === CONTAINER) return { state: 'error', reason: terminatedWords(c.state.terminated, memoryLimit) };
    const initFailed = c.state?.terminated && c.state.terminated.exitCode !== 0 && (status.initContainerStatuses ?? []).includes(c);
    if (initFailed && c.state?.terminated) return { state: 'error', reason: `the runtime init container failed: ${terminatedWords(c.state.terminated, undefined)}` };
  }
  const main = status.containerStatuses?.find((c) => c.name === CONTAINER);
  if (status.phase === 'Running' && main?.state?.running) {
    // A new container start (a new pod, or a restarted container) must be probed again.
    return { state: 'up', startKey: `${pod.metadata?.uid}/${main.restartCount}/${main.state.running.startedAt?.toString() ?? ''}` };
  }
  return { state: 'pending' };
}
