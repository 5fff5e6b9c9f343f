/**
 * The REST wire format of /jupyter-remote/api/, mirrored from
 * jupyter_remote/server/models.py (the TypedDicts are the source of truth).
 */

export interface IAdaptive {
  minimum: number;
  maximum: number;
}

export interface ICall {
  call: string;
  label: string;
  kind: string;
  notebook: string | null;
  pid: number | null;
  state: 'queued' | 'running';
  tasks: number;
  worker: string | null;
}

export interface IEnvironment {
  hash: string;
  requirements: string[];
  hosts: string[];
  size: number;
  last_used: number;
  in_use: boolean;
  /** Built for a call on this cluster (its build record names this cluster's scheduler). */
  built_here: boolean;
}

/** A kernel that uses a cluster it does not own (it connected by name or address). */
export interface IUser {
  pid: number;
  notebook: string | null;
}

export interface ICluster {
  name: string;
  address: string | null;
  source: 'server' | 'kernel' | 'config';
  status: string;
  error: string | null;
  manageable: boolean;
  dashboard: string | null;
  dashboard_direct: string | null;
  workers: number | null;
  threads: number | null;
  memory: number | null;
  requested_workers: number | null;
  adaptive: IAdaptive | null;
  template: string | null;
  options: Record<string, unknown>;
  created: number | null;
  pid: number | null;
  notebook: string | null;
  /** The name people see: a kernel's cluster shows as its cells call it (`local`). */
  label: string;
  /** Other kernels connected to it now (the owner is `pid` / `notebook`). */
  users: IUser[];
}

export interface IClusterDetail extends ICluster {
  calls: ICall[];
  environments: IEnvironment[];
}

export interface ITemplateOption {
  name: string;
  title: string;
  type: 'int' | 'float' | 'str' | 'bool';
  default: unknown;
  description: string;
  minimum: number | null;
}

export interface ITemplate {
  name: string;
  title: string;
  description: string;
  factory: string;
  options: ITemplateOption[];
}

export interface ICreateRequest {
  name?: string;
  template: string;
  options: Record<string, unknown>;
}

export type IScaleRequest = { workers: number } | { adaptive: IAdaptive };

export interface IMessage {
  message: string;
}
