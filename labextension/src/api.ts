import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICluster,
  IClusterDetail,
  ICreateRequest,
  IMessage,
  IScaleRequest,
  ITemplate
} from './models';

/**
 * An error from the server, carrying the message it sent (shown to the user as is).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

/**
 * Call /jupyter-remote/api/<path> with the user's Jupyter credentials.
 */
export async function request<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'jupyter-remote', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, `cannot reach the Jupyter server: ${error}`);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    const message =
      (data as IMessage | null)?.message ?? response.statusText ?? 'error';
    throw new ApiError(response.status, message);
  }
  return data as T;
}

export const api = {
  templates: () => request<ITemplate[]>('templates'),
  clusters: () => request<ICluster[]>('clusters'),
  cluster: (name: string) =>
    request<IClusterDetail>(`clusters/${encodeURIComponent(name)}`),
  create: (body: ICreateRequest) =>
    request<ICluster>('clusters', {
      method: 'POST',
      body: JSON.stringify(body)
    }),
  scale: (name: string, body: IScaleRequest) =>
    request<ICluster>(`clusters/${encodeURIComponent(name)}`, {
      method: 'PATCH',
      body: JSON.stringify(body)
    }),
  shutdown: (name: string) =>
    request<IMessage>(`clusters/${encodeURIComponent(name)}`, {
      method: 'DELETE'
    }),
  cancel: (name: string, call: string) =>
    request<IMessage>(
      `clusters/${encodeURIComponent(name)}/calls/${encodeURIComponent(call)}`,
      { method: 'DELETE' }
    )
};
