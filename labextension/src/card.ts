import { Dialog, showDialog } from '@jupyterlab/apputils';
import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { api } from './api';
import { Private } from './dom';
import { renderEnvironments } from './environments';
import { ICall, ICluster, IScaleRequest } from './models';
import { ScaleBody } from './scale';

/**
 * The individual plots of a Dask dashboard that can be docked beside a notebook
 * (their paths on the dashboard server, as dask-labextension uses them).
 */
export const PLOTS: ReadonlyArray<{ path: string; label: string }> = [
  { path: 'individual-task-stream', label: 'Task stream' },
  { path: 'individual-progress', label: 'Progress' },
  { path: 'individual-workers-memory', label: 'Worker memory' }
];

/**
 * What the sidebar asks of the application.
 */
export interface ISidebarHost {
  /** Insert a `%%remote NAME` cell into the active notebook; false if there is none. */
  insertCell(name: string): boolean;
  /**
   * Open a dashboard in a JupyterLab tab: the whole dashboard (`plot` null), or one of
   * its individual plots docked beside the active notebook.
   */
  openDashboard(name: string, url: string, plot: string | null): void;
  /** Close every dashboard tab and pane of a cluster (it is shutting down). */
  closeDashboards(name: string): void;
}

/**
 * The change a card waits to see reported by the cluster after Scale, Adapt or Shut down.
 */
type Pending =
  | { kind: 'workers'; workers: number }
  | { kind: 'adaptive'; minimum: number; maximum: number }
  | { kind: 'shutdown' };

/**
 * What a card asks of the sidebar that holds it.
 */
export interface ICardOwner {
  /** Show (or with null, clear) what an action of the user's failed. */
  showError(message: string | null): void;
  /** Refresh every card now. */
  refresh(): Promise<void>;
}

/**
 * One cluster: its figures, its actions, and on demand its environments and calls.
 */
export class Card {
  readonly node: HTMLElement;

  constructor(
    private model: ICluster,
    private readonly host: ISidebarHost,
    private readonly sidebar: ICardOwner
  ) {
    const { el, button } = Private;
    this.node = el('section', 'jr-Card');
    this.node.dataset.cluster = model.name;
    // A kernel's cluster shows as its cells call it (`local`); the registry key
    // (`local-<pid>`) stays unique, and the owner (kernel, notebook) says whose it is.
    const label = model.label ?? model.name;
    this.node.setAttribute('aria-label', `Cluster ${label}`);

    const head = el('div', 'jr-Card-head');
    this.toggle = button('', 'jr-Card-toggle', () => this.expand());
    this.toggle.appendChild(caretRightIcon.element({ tag: 'span' }));
    this.toggle.classList.remove('jp-mod-styled');
    this.toggle.setAttribute('aria-label', `Show environments and calls of ${label}`);
    this.toggle.setAttribute('aria-expanded', 'false');
    this.toggle.title = 'Show environments and running calls';
    head.appendChild(this.toggle);
    const title = el('h3', 'jr-Card-name', label);
    if (label !== model.name) {
      title.title = `Known to other notebooks as ${model.name}`;
    }
    head.appendChild(title);
    this.active = el('span', 'jr-Badge jr-Card-active', 'this notebook');
    this.active.hidden = true;
    head.appendChild(this.active);
    this.status = el('span', 'jr-Status');
    head.appendChild(this.status);
    this.node.appendChild(head);

    this.address = el('div', 'jr-Card-address');
    this.node.appendChild(this.address);
    this.figures = el('div', 'jr-Card-figures');
    this.node.appendChild(this.figures);
    this.pendingNode = el('div', 'jr-Pending');
    this.pendingNode.setAttribute('role', 'status');
    this.pendingNode.hidden = true;
    this.node.appendChild(this.pendingNode);
    this.error = el('div', 'jr-Error');
    this.node.appendChild(this.error);

    const actions = el('div', 'jr-Card-actions');
    const insert = button('Insert %%remote cell', '', () => {
      // The owning notebook calls its cluster by its label; others by the unique key.
      const mine = this.node.dataset.owner === 'true';
      if (!this.host.insertCell(mine ? (this.model.label ?? this.model.name) : this.model.name)) {
        this.sidebar.showError('Open a notebook first: the cell goes into the active notebook.');
      }
    });
    insert.dataset.action = 'insert-cell';
    this.dashboard = button('Dashboard', '', () => this.openDashboard(null));
    this.dashboard.dataset.action = 'dashboard';
    actions.append(insert, this.dashboard);
    this.node.appendChild(actions);

    this.plots = el('div', 'jr-Card-plots');
    this.plots.setAttribute('role', 'group');
    this.plots.setAttribute('aria-label', `Dashboard plots of ${label}`);
    this.plots.appendChild(el('span', 'jr-Card-plotsLabel', 'Plots'));
    for (const plot of PLOTS) {
      const b = button(plot.label, 'jr-mod-small', () => this.openDashboard(plot.path));
      b.dataset.plot = plot.path;
      b.title = `Dock the ${plot.label.toLowerCase()} plot beside the notebook`;
      this.plots.appendChild(b);
    }
    this.node.appendChild(this.plots);

    this.manage = el('div', 'jr-Card-actions jr-Card-manage');
    this.scaleButton = button('Scale…', '', () => this.scale());
    this.scaleButton.dataset.action = 'scale';
    const shutdown = button('Shut down…', 'jp-mod-warn', () => this.shutdown());
    shutdown.dataset.action = 'shutdown';
    this.manage.append(this.scaleButton, shutdown);
    this.node.appendChild(this.manage);

    this.details = el('div', 'jr-Card-details');
    this.details.hidden = true;
    this.node.appendChild(this.details);
  }

  update(model: ICluster): void {
    this.model = model;
    this.node.dataset.status = model.status;
    this.status.textContent = model.status;
    this.status.className = `jr-Status jr-Status-${model.status.replace(/\s+/g, '-')}`;
    this.address.textContent = model.address ?? '(no address yet)';
    const count = (n: number | null, one: string, many: string) =>
      n === null || n === undefined ? `– ${many}` : `${n} ${n === 1 ? one : many}`;
    const parts = [
      count(model.workers, 'worker', 'workers'),
      count(model.threads, 'thread', 'threads'),
      Private.bytes(model.memory)
    ];
    if (model.adaptive) {
      parts.push(`adaptive ${model.adaptive.minimum}–${model.adaptive.maximum}`);
    }
    parts.push(
      model.source === 'kernel'
        ? `kernel ${model.pid}${model.notebook ? ` (${Private.basename(model.notebook)})` : ''}`
        : model.source === 'server'
          ? 'started from the sidebar'
          : 'dask config'
    );
    this.figures.textContent = parts.join(' · ');
    this.error.hidden = !model.error;
    this.error.textContent = model.error ?? '';
    const url = model.dashboard ?? model.dashboard_direct;
    this.dashboard.disabled = !url;
    this.plots.hidden = !url;
    this.manage.hidden = !model.manageable;
    this.settle();
    if (!this.details.hidden) {
      void this.loadDetails();
    }
  }

  /**
   * Mark the card when the notebook at `path` (root-relative) uses the cluster: its kernel
   * started it (the owner), or connected to it by name or address (a user).
   */
  markActive(path: string | null): void {
    const is = (notebook: string | null | undefined) =>
      !!path &&
      !!notebook &&
      (notebook === path || notebook.endsWith(`/${path.replace(/^\/+/, '')}`));
    const owner = is(this.model.notebook);
    const marked = owner || (this.model.users ?? []).some(user => is(user.notebook));
    this.active.hidden = !marked;
    this.active.title = owner
      ? "The active notebook's kernel started this cluster"
      : "The active notebook's kernel uses this cluster";
    this.node.classList.toggle('jr-mod-active', marked);
    this.node.dataset.active = String(marked);
    this.node.dataset.owner = String(owner);
  }

  private openDashboard(plot: string | null): void {
    const url = this.model.dashboard ?? this.model.dashboard_direct;
    if (url) {
      this.host.openDashboard(this.model.name, url, plot);
    }
  }

  /** Show what the card waits for, and stop waiting once the cluster reports it. */
  private settle(): void {
    const pending = this.pending;
    const m = this.model;
    if (pending && m.status === 'error') {
      this.pending = null;
    } else if (pending?.kind === 'workers' && m.workers === pending.workers && !m.adaptive) {
      this.pending = null;
    } else if (
      pending?.kind === 'adaptive' &&
      m.adaptive?.minimum === pending.minimum &&
      m.adaptive?.maximum === pending.maximum &&
      m.workers !== null &&
      m.workers >= pending.minimum &&
      m.workers <= pending.maximum
    ) {
      this.pending = null;
    }
    const now = m.workers === null ? '' : ` (now ${m.workers})`;
    const text = !this.pending
      ? ''
      : this.pending.kind === 'workers'
        ? `Scaling to ${this.pending.workers} ${this.pending.workers === 1 ? 'worker' : 'workers'}…${now}`
        : this.pending.kind === 'adaptive'
          ? `Adapting to ${this.pending.minimum}–${this.pending.maximum} workers…${now}`
          : 'Shutting down…';
    this.pendingNode.textContent = text;
    this.pendingNode.hidden = !this.pending;
    this.node.dataset.pending = this.pending?.kind ?? '';
    this.node.setAttribute('aria-busy', String(!!this.pending));
    this.scaleButton.disabled = this.pending?.kind === 'shutdown';
  }

  private setPending(pending: Pending | null): void {
    this.pending = pending;
    this.settle();
  }

  private async scale(): Promise<void> {
    const m = this.model;
    const body = new ScaleBody(m.name, {
      workers: m.requested_workers ?? m.workers ?? 1,
      adaptive: m.adaptive
    });
    const result = await showDialog<IScaleRequest | null>({
      title: `Scale ${m.name}`,
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Scale' })],
      focusNodeSelector: 'input'
    });
    const request = result.button.accept ? result.value : null;
    if (!request) {
      return;
    }
    const pending: Pending =
      'workers' in request
        ? { kind: 'workers', workers: request.workers }
        : { kind: 'adaptive', ...request.adaptive };
    this.setPending(pending);
    if (!(await this.act(() => api.scale(m.name, request)))) {
      this.setPending(null);
    }
  }

  private async shutdown(): Promise<void> {
    const name = this.model.name;
    const body = Private.el(
      'p',
      '',
      `Shut down cluster ${name}? Its workers stop, results held on them are lost, ` +
        'and its dashboard tabs close.'
    );
    const result = await showDialog({
      title: `Shut down ${name}`,
      body: new Widget({ node: body }),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Shut down' })]
    });
    if (!result.button.accept) {
      return;
    }
    this.host.closeDashboards(name);
    this.setPending({ kind: 'shutdown' });
    if (!(await this.act(() => api.shutdown(name)))) {
      this.setPending(null);
    }
  }

  /** Run an action; the server's message is shown on failure. True if it succeeded. */
  private async act(what: () => Promise<unknown>): Promise<boolean> {
    let ok = true;
    try {
      await what();
      this.sidebar.showError(null);
    } catch (error) {
      ok = false;
      this.sidebar.showError(Private.message(error));
    }
    await this.sidebar.refresh();
    return ok;
  }

  private async expand(): Promise<void> {
    this.details.hidden = !this.details.hidden;
    this.toggle.replaceChildren(
      (this.details.hidden ? caretRightIcon : caretDownIcon).element({ tag: 'span' })
    );
    this.toggle.setAttribute('aria-expanded', String(!this.details.hidden));
    if (!this.details.hidden) {
      await this.loadDetails();
    }
  }

  private async loadDetails(): Promise<void> {
    const { el } = Private;
    let detail;
    try {
      detail = await api.cluster(this.model.name);
    } catch (error) {
      this.details.replaceChildren(el('div', 'jr-Error', Private.message(error)));
      return;
    }
    const envs = el('div', 'jr-Section');
    envs.appendChild(el('h4', '', 'Environments'));
    envs.appendChild(renderEnvironments(detail.environments));
    const calls = el('div', 'jr-Section');
    calls.appendChild(el('h4', '', 'Running calls'));
    if (detail.calls.length === 0) {
      calls.appendChild(el('div', 'jr-Empty', 'No remote calls running.'));
    }
    for (const call of detail.calls) {
      calls.appendChild(this.callRow(call));
    }
    this.details.replaceChildren(envs, calls);
  }

  private callRow(call: ICall): HTMLElement {
    const { el } = Private;
    const row = el('div', 'jr-Row jr-Call');
    row.dataset.call = call.call;
    const where = call.notebook
      ? Private.basename(call.notebook)
      : call.pid
        ? `kernel ${call.pid}`
        : 'unknown notebook';
    const label = el('span', 'jr-Call-label', `${call.label} · ${where} · ${call.state}`);
    label.title = `${call.notebook ?? ''} (kernel ${call.pid ?? '?'}) on ${call.worker ?? 'no worker yet'}`;
    row.appendChild(label);
    const cancel = Private.button('Cancel', 'jp-mod-warn jr-mod-small', () =>
      this.act(() => api.cancel(this.model.name, call.call))
    );
    cancel.setAttribute('aria-label', `Cancel ${call.label}`);
    cancel.dataset.action = 'cancel-call';
    row.appendChild(cancel);
    return row;
  }

  private pending: Pending | null = null;
  private readonly toggle: HTMLButtonElement;
  private readonly active: HTMLElement;
  private readonly status: HTMLElement;
  private readonly address: HTMLElement;
  private readonly figures: HTMLElement;
  private readonly pendingNode: HTMLElement;
  private readonly error: HTMLElement;
  private readonly dashboard: HTMLButtonElement;
  private readonly plots: HTMLElement;
  private readonly manage: HTMLElement;
  private readonly scaleButton: HTMLButtonElement;
  private readonly details: HTMLElement;
}
