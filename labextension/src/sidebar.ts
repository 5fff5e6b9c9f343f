import { Widget } from '@lumino/widgets';

import { api, ApiError } from './api';
import { ICall, ICluster, IClusterDetail, ITemplate } from './models';

/**
 * What the sidebar asks of the application.
 */
export interface ISidebarHost {
  /** Insert a `%%remote NAME` cell into the active notebook; false if there is none. */
  insertCell(name: string): boolean;
  /** Open a dashboard URL in a JupyterLab tab. */
  openDashboard(name: string, url: string): void;
}

/**
 * The "Remote clusters" sidebar: one card per cluster, refreshed by itself.
 */
export class ClusterSidebar extends Widget {
  constructor(
    private readonly host: ISidebarHost,
    private readonly refreshMs = 2000
  ) {
    super();
    this.id = 'jupyter-remote-sidebar';
    this.addClass('jr-Sidebar');
    this.title.caption = 'Remote clusters';

    const header = Private.el('div', 'jr-Sidebar-header');
    header.appendChild(Private.el('h2', 'jr-Sidebar-title', 'Remote clusters'));
    const newButton = Private.button('New cluster', 'jr-Button jr-mod-accept', () =>
      this.toggleForm()
    );
    newButton.dataset.action = 'new-cluster';
    header.appendChild(newButton);
    this.node.appendChild(header);

    this.formNode = Private.el('form', 'jr-Form');
    this.formNode.hidden = true;
    this.node.appendChild(this.formNode);

    this.errorNode = Private.el('div', 'jr-Error');
    this.errorNode.hidden = true;
    this.errorNode.title = 'Click to dismiss';
    this.errorNode.addEventListener('click', () => this.showError(null));
    this.node.appendChild(this.errorNode);

    this.listNode = Private.el('div', 'jr-ClusterList');
    this.node.appendChild(this.listNode);
    this.emptyNode = Private.el(
      'div',
      'jr-Empty',
      'No clusters yet. Start one with "New cluster", or run a %%remote cell.'
    );
    this.listNode.appendChild(this.emptyNode);
  }

  /** Refresh now (and go on refreshing while attached). */
  async refresh(): Promise<void> {
    try {
      const clusters = await api.clusters();
      this.refreshError = null;
      this.render(clusters);
    } catch (error) {
      this.refreshError = Private.message(error);
    }
    this.renderError();
  }

  /**
   * Show what an action of the user's failed (null clears it). It stays until the next
   * action or a click on it: a refresh that succeeds clears only its own errors.
   */
  showError(message: string | null): void {
    this.actionError = message;
    this.renderError();
  }

  private renderError(): void {
    const message = this.actionError ?? this.refreshError;
    this.errorNode.hidden = message === null;
    this.errorNode.textContent = message ?? '';
  }

  protected onAfterAttach(): void {
    void this.refresh();
    this.timer = window.setInterval(() => {
      if (this.isVisible) {
        void this.refresh();
      }
    }, this.refreshMs);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  private render(clusters: ICluster[]): void {
    const seen = new Set<string>();
    for (const model of clusters) {
      seen.add(model.name);
      let card = this.cards.get(model.name);
      if (!card) {
        card = new Private.Card(model, this.host, this);
        this.cards.set(model.name, card);
      }
      this.listNode.appendChild(card.node); // keeps the server's order
      card.update(model);
    }
    for (const [name, card] of this.cards) {
      if (!seen.has(name)) {
        card.node.remove();
        this.cards.delete(name);
      }
    }
    this.emptyNode.hidden = clusters.length > 0;
  }

  private async toggleForm(): Promise<void> {
    if (!this.formNode.hidden) {
      this.formNode.hidden = true;
      return;
    }
    try {
      const templates = await api.templates();
      Private.buildForm(this.formNode, templates, async body => {
        await api.create(body);
        this.formNode.hidden = true;
        await this.refresh();
      });
      this.formNode.hidden = false;
    } catch (error) {
      this.showError(Private.message(error));
    }
  }

  private readonly formNode: HTMLFormElement;
  private readonly errorNode: HTMLElement;
  private actionError: string | null = null;
  private refreshError: string | null = null;
  private readonly listNode: HTMLElement;
  private readonly emptyNode: HTMLElement;
  private readonly cards = new Map<string, Private.Card>();
  private timer = 0;
}

namespace Private {
  export function el<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    className = '',
    text = ''
  ): HTMLElementTagNameMap[K] {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  export function button(
    label: string,
    className: string,
    onClick: () => void | Promise<void>
  ): HTMLButtonElement {
    const node = el('button', className, label);
    node.type = 'button';
    node.addEventListener('click', event => {
      event.preventDefault();
      void onClick();
    });
    return node;
  }

  export function message(error: unknown): string {
    if (error instanceof ApiError) {
      return error.message;
    }
    return error instanceof Error ? error.message : String(error);
  }

  export function basename(path: string): string {
    return path.split('/').pop() || path;
  }

  export function bytes(n: number | null): string {
    if (n === null || n === undefined) {
      return '–';
    }
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function numberInput(value: number, min = 0): HTMLInputElement {
    const input = el('input', 'jr-Input jr-mod-number');
    input.type = 'number';
    input.min = String(min);
    input.value = String(value);
    return input;
  }

  /**
   * Fill `form` with a template chooser, a name and the template's options.
   */
  export function buildForm(
    form: HTMLFormElement,
    templates: ITemplate[],
    submit: (body: {
      name?: string;
      template: string;
      options: Record<string, unknown>;
    }) => Promise<void>
  ): void {
    form.replaceChildren();
    const select = el('select', 'jr-Input');
    select.name = 'template';
    for (const t of templates) {
      const option = el('option', '', t.title);
      option.value = t.name;
      select.appendChild(option);
    }
    const label = (text: string, input: HTMLElement, help = '') => {
      const row = el('label', 'jr-Form-row');
      row.appendChild(el('span', 'jr-Form-label', text));
      row.appendChild(input);
      if (help) {
        row.appendChild(el('span', 'jr-Form-help', help));
      }
      form.appendChild(row);
    };
    label('Template', select);
    const description = el('div', 'jr-Form-help');
    form.appendChild(description);
    const name = el('input', 'jr-Input');
    name.name = 'name';
    name.placeholder = 'automatic (lab-1, lab-2, …)';
    label('Name', name);
    const optionsNode = el('div', 'jr-Form-options');
    form.appendChild(optionsNode);
    const inputs = new Map<string, [HTMLInputElement, string]>();

    const showTemplate = () => {
      const template = templates.find(t => t.name === select.value);
      optionsNode.replaceChildren();
      inputs.clear();
      if (!template) {
        return;
      }
      description.textContent = template.description;
      for (const option of template.options) {
        const input = el('input', 'jr-Input');
        input.name = option.name;
        if (option.type === 'bool') {
          input.type = 'checkbox';
          input.checked = Boolean(option.default);
        } else {
          input.type = option.type === 'str' ? 'text' : 'number';
          input.value = option.default === null ? '' : String(option.default);
          if (option.minimum !== null && option.minimum !== undefined) {
            input.min = String(option.minimum);
          }
        }
        inputs.set(option.name, [input, option.type]);
        const row = el('label', 'jr-Form-row');
        row.appendChild(el('span', 'jr-Form-label', option.name));
        row.appendChild(input);
        row.appendChild(el('span', 'jr-Form-help', option.description));
        optionsNode.appendChild(row);
      }
    };
    select.addEventListener('change', showTemplate);
    showTemplate();

    const error = el('div', 'jr-Error');
    error.hidden = true;
    const start = button('Start', 'jr-Button jr-mod-accept', async () => {
      const options: Record<string, unknown> = {};
      for (const [key, [input, type]] of inputs) {
        if (type === 'bool') {
          options[key] = input.checked;
        } else if (type === 'int' || type === 'float') {
          options[key] = input.value === '' ? null : Number(input.value);
        } else {
          options[key] = input.value;
        }
      }
      start.disabled = true;
      try {
        await submit({
          template: select.value,
          options,
          ...(name.value ? { name: name.value } : {})
        });
        error.hidden = true;
      } catch (e) {
        error.textContent = message(e);
        error.hidden = false;
      } finally {
        start.disabled = false;
      }
    });
    start.dataset.action = 'start-cluster';
    const actions = el('div', 'jr-Form-actions');
    actions.appendChild(start);
    actions.appendChild(
      button('Cancel', 'jr-Button', () => {
        form.hidden = true;
      })
    );
    form.appendChild(actions);
    form.appendChild(error);
  }

  /**
   * One cluster: its figures, its actions, and on demand its environments and calls.
   */
  export class Card {
    readonly node: HTMLElement;

    constructor(
      private model: ICluster,
      private readonly host: ISidebarHost,
      private readonly sidebar: ClusterSidebar
    ) {
      this.node = el('div', 'jr-Card');
      this.node.dataset.cluster = model.name;

      const head = el('div', 'jr-Card-head');
      this.toggle = button('▸', 'jr-Card-toggle', () => this.expand());
      this.toggle.title = 'Show environments and running calls';
      head.appendChild(this.toggle);
      head.appendChild(el('span', 'jr-Card-name', model.name));
      this.status = el('span', 'jr-Status');
      head.appendChild(this.status);
      this.node.appendChild(head);

      this.address = el('div', 'jr-Card-address');
      this.node.appendChild(this.address);
      this.figures = el('div', 'jr-Card-figures');
      this.node.appendChild(this.figures);
      this.error = el('div', 'jr-Error');
      this.node.appendChild(this.error);

      const actions = el('div', 'jr-Card-actions');
      const insert = button('Insert %%remote cell', 'jr-Button', () => {
        if (!this.host.insertCell(this.model.name)) {
          this.sidebar.showError('Open a notebook first: the cell goes into the active notebook.');
        }
      });
      insert.dataset.action = 'insert-cell';
      actions.appendChild(insert);
      this.dashboard = button('Dashboard', 'jr-Button', () => {
        const url = this.model.dashboard ?? this.model.dashboard_direct;
        if (url) {
          this.host.openDashboard(this.model.name, url);
        }
      });
      this.dashboard.dataset.action = 'dashboard';
      actions.appendChild(this.dashboard);
      this.node.appendChild(actions);

      this.manage = el('div', 'jr-Card-manage');
      this.workersInput = numberInput(1);
      const scale = button('Scale', 'jr-Button', () =>
        this.act(() =>
          api.scale(this.model.name, { workers: Number(this.workersInput.value) })
        )
      );
      scale.dataset.action = 'scale';
      this.workersInput.dataset.field = 'workers';
      const row1 = el('div', 'jr-Card-row');
      row1.append(el('span', 'jr-Form-label', 'Workers'), this.workersInput, scale);
      this.minInput = numberInput(0);
      this.maxInput = numberInput(4);
      const adapt = button('Adapt', 'jr-Button', () =>
        this.act(() =>
          api.scale(this.model.name, {
            adaptive: {
              minimum: Number(this.minInput.value),
              maximum: Number(this.maxInput.value)
            }
          })
        )
      );
      adapt.dataset.action = 'adapt';
      const row2 = el('div', 'jr-Card-row');
      row2.append(
        el('span', 'jr-Form-label', 'Adaptive'),
        this.minInput,
        el('span', '', '–'),
        this.maxInput,
        adapt
      );
      const shutdown = button('Shut down', 'jr-Button jr-mod-warn', () =>
        this.act(() => api.shutdown(this.model.name))
      );
      shutdown.dataset.action = 'shutdown';
      this.manage.append(row1, row2, shutdown);
      this.node.appendChild(this.manage);

      this.details = el('div', 'jr-Card-details');
      this.details.hidden = true;
      this.node.appendChild(this.details);
      this.initialized = false;
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
        count(model.threads, 'core', 'cores'),
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
      this.dashboard.disabled = !(model.dashboard ?? model.dashboard_direct);
      this.manage.hidden = !model.manageable;
      if (!this.initialized && model.manageable) {
        // Seed the inputs once; later refreshes must not overwrite what the user types.
        this.workersInput.value = String(model.requested_workers ?? model.workers ?? 1);
        if (model.adaptive) {
          this.minInput.value = String(model.adaptive.minimum);
          this.maxInput.value = String(model.adaptive.maximum);
        }
        this.initialized = true;
      }
      if (!this.details.hidden) {
        void this.loadDetails();
      }
    }

    private async act(what: () => Promise<unknown>): Promise<void> {
      try {
        await what();
        this.sidebar.showError(null);
      } catch (error) {
        this.sidebar.showError(message(error));
      }
      await this.sidebar.refresh();
    }

    private async expand(): Promise<void> {
      this.details.hidden = !this.details.hidden;
      this.toggle.textContent = this.details.hidden ? '▸' : '▾';
      if (!this.details.hidden) {
        await this.loadDetails();
      }
    }

    private async loadDetails(): Promise<void> {
      let detail: IClusterDetail;
      try {
        detail = await api.cluster(this.model.name);
      } catch (error) {
        this.details.replaceChildren(el('div', 'jr-Error', message(error)));
        return;
      }
      const envs = el('div', 'jr-Section');
      envs.appendChild(el('h3', '', 'Environments'));
      if (detail.environments.length === 0) {
        envs.appendChild(
          el('div', 'jr-Empty', 'No requirement environments (cells ran without --reqs).')
        );
      }
      for (const env of detail.environments) {
        const hosts = env.hosts.length === 1 ? '1 host' : `${env.hosts.length} hosts`;
        const row = el(
          'div',
          'jr-Row jr-Env',
          `${env.requirements.join(' ') || '(no requirements)'} · ${hosts} · ${Private.bytes(env.size)}${env.in_use ? ' · in use' : ''}`
        );
        row.title = `environment ${env.hash} on ${env.hosts.join(', ')}`;
        row.dataset.env = env.hash;
        envs.appendChild(row);
      }
      const calls = el('div', 'jr-Section');
      calls.appendChild(el('h3', '', 'Running calls'));
      if (detail.calls.length === 0) {
        calls.appendChild(el('div', 'jr-Empty', 'No remote calls running.'));
      }
      for (const call of detail.calls) {
        calls.appendChild(this.callRow(call));
      }
      this.details.replaceChildren(envs, calls);
    }

    private callRow(call: ICall): HTMLElement {
      const row = el('div', 'jr-Row jr-Call');
      row.dataset.call = call.call;
      const where = call.notebook
        ? basename(call.notebook)
        : call.pid
          ? `kernel ${call.pid}`
          : 'unknown notebook';
      const label = el('span', 'jr-Call-label', `${call.label} · ${where} · ${call.state}`);
      label.title = `${call.notebook ?? ''} (kernel ${call.pid ?? '?'}) on ${call.worker ?? 'no worker yet'}`;
      row.appendChild(label);
      const cancel = button('Cancel', 'jr-Button jr-mod-warn', () =>
        this.act(() => api.cancel(this.model.name, call.call))
      );
      cancel.dataset.action = 'cancel-call';
      row.appendChild(cancel);
      return row;
    }

    private readonly toggle: HTMLButtonElement;
    private readonly status: HTMLElement;
    private readonly address: HTMLElement;
    private readonly figures: HTMLElement;
    private readonly error: HTMLElement;
    private readonly dashboard: HTMLButtonElement;
    private readonly manage: HTMLElement;
    private readonly workersInput: HTMLInputElement;
    private readonly minInput: HTMLInputElement;
    private readonly maxInput: HTMLInputElement;
    private readonly details: HTMLElement;
    private initialized: boolean;
  }
}
