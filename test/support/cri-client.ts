/**
 * A CRI runtime-service client over containerd's gRPC socket, making pod
 * sandboxes as the kubelet does: RunPodSandbox with the pod's metadata
 * (containerd passes it to CNI as K8S_POD_NAMESPACE/NAME/UID and
 * K8S_POD_INFRA_CONTAINER_ID), PodSandboxStatus, StopPodSandbox (CNI DEL),
 * RemovePodSandbox. Messages: test/support/cri-runtime-v1.proto.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface SandboxStatus {
  readonly id: string;
  readonly state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  readonly ip: string;
  /** The sandbox's netns file, from containerd's verbose info. */
  readonly netnsPath: string | undefined;
}

export interface PodMeta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

type Unary = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

export class CriClient {
  readonly #client: grpc.Client;

  constructor(socket: string) {
    const def = protoLoader.loadSync(join(import.meta.dirname, 'cri-runtime-v1.proto'), {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      runtime: { v1: { RuntimeService: typeof grpc.Client } };
    };
    this.#client = new pkg.runtime.v1.RuntimeService(
      `unix://${socket}`,
      grpc.credentials.createInsecure(),
    );
  }

  #call<T>(method: string, req: unknown, timeoutMs = 60_000): Promise<T> {
    const fn = (this.#client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) throw new Error(`no CRI method ${method}`);
    return new Promise((resolve, reject) =>
      fn.call(
        this.#client,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res as T)),
      ),
    );
  }

  version(): Promise<{
    runtime_name: string;
    runtime_version: string;
    runtime_api_version: string;
  }> {
    return this.#call('Version', { version: 'v1' });
  }

  /** As the kubelet: pod network (not the node's), the pod's metadata, attempt 0. */
  async runPodSandbox(pod: PodMeta, logDirectory: string): Promise<string> {
    const res = await this.#call<{ pod_sandbox_id: string }>('RunPodSandbox', {
      config: {
        metadata: { ...pod, attempt: 0 },
        hostname: pod.name,
        log_directory: logDirectory,
        labels: {
          'io.kubernetes.pod.name': pod.name,
          'io.kubernetes.pod.namespace': pod.namespace,
          'io.kubernetes.pod.uid': pod.uid,
        },
        annotations: {},
        linux: {
          cgroup_parent: '',
          security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
        },
      },
      runtime_handler: '',
    });
    return res.pod_sandbox_id;
  }

  async status(id: string): Promise<SandboxStatus> {
    const res = await this.#call<{
      status: { id: string; state: SandboxStatus['state']; network: { ip: string } | null };
      info: Record<string, string>;
    }>('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    let netnsPath: string | undefined;
    try {
      const info = JSON.parse(res.info['info'] ?? '{}') as {
        runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
      };
      netnsPath = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
    } catch {
      netnsPath = undefined;
    }
    return {
      id: res.status.id,
      state: res.status.state,
      ip: res.status.network?.ip ?? '',
      netnsPath,
    };
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.#call('StopPodSandbox', { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.#call('RemovePodSandbox', { pod_sandbox_id: id });
  }

  close(): void {
    this.#client.close();
  }
}
