import { Widget } from '@lumino/widgets';

import { api } from './api';
import { Card, ICardOwner, ISidebarHost } from './card';
import { Private } from './dom';
import { buildForm } from './form';
import { ICluster } from './models';

export { ISidebarHost, PLOTS } from './card';

/**
 * The "Remote clusters" sidebar: one card per cluster, refreshed by itself.
 */
export class ClusterSidebar extends Widget implements ICardOwner {
  constructor(
    private readonly host: ISidebarHost,
    private readonly refreshMs = 2000
  ) {
    super();
    this.id = 'jupyter-remote-sidebar';
    this.addClass('jr-Sidebar');
    this.title.caption = 'Remote clusters';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Remote clusters');

    const header = Private.el('div', 'jr-Sidebar-header');
    header.appendChild(Private.el('h2', 'jr-Sidebar-title', 'Remote clusters'));
    this.newButton = Private.button('New cluster', 'jp-mod-accept', () =>
      this.toggleForm()
    );
    this.newButton.dataset.action = 'new-cluster';
    this.newButton.setAttribute('aria-expanded', 'false');
    header.appendChild(this.newButton);
    this.node.appendChild(header);

    this.formNode = Private.el('form', 'jr-Form');
    this.formNode.setAttribute('aria-label', 'New cluster');
    this.formNode.hidden = true;
    this.node.appendChild(this.formNode);

    this.errorNode = Private.el('div', 'jr-Error');
    this.errorNode.setAttribute('role', 'alert');
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

  /**
   * The path (relative to the server's root) of the notebook in front, or null. The card of
   * the cluster that notebook's kernel started is marked.
   */
  setActiveNotebook(path: string | null): void {
    this.activeNotebook = path;
    for (const card of this.cards.values()) {
      card.markActive(path);
    }
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
        card = new Card(model, this.host, this);
        this.cards.set(model.name, card);
      }
      this.listNode.appendChild(card.node); // keeps the server's order
      card.update(model);
      card.markActive(this.activeNotebook);
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
      this.hideForm();
      return;
    }
    try {
      const templates = await api.templates();
      buildForm(
        this.formNode,
        templates,
        async body => {
          await api.create(body);
          this.hideForm();
          await this.refresh();
        },
        () => this.hideForm()
      );
      this.formNode.hidden = false;
      this.newButton.setAttribute('aria-expanded', 'true');
    } catch (error) {
      this.showError(Private.message(error));
    }
  }

  private hideForm(): void {
    this.formNode.hidden = true;
    this.newButton.setAttribute('aria-expanded', 'false');
  }

  private readonly newButton: HTMLButtonElement;
  private readonly formNode: HTMLFormElement;
  private readonly errorNode: HTMLElement;
  private actionError: string | null = null;
  private refreshError: string | null = null;
  private activeNotebook: string | null = null;
  private readonly listNode: HTMLElement;
  private readonly emptyNode: HTMLElement;
  private readonly cards = new Map<string, Card>();
  private timer = 0;
}

