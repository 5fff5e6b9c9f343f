import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { ClusterSidebar, PLOTS } from './sidebar';

namespace CommandIDs {
  export const insertCell = 'jupyter-remote:insert-cell';
  export const openDashboard = 'jupyter-remote:open-dashboard';
  export const refresh = 'jupyter-remote:refresh';
}

const clusterIcon = new LabIcon({
  name: 'jupyter-remote:clusters',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="12" cy="5" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="19" cy="18" r="3"/>' +
    '<path d="M11 8h2v3.5l5 4-1.2 1.6-4.8-3.8-4.8 3.8L6 15.5l5-4z"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote:sidebar',
  description: 'The Remote clusters sidebar of jupyter_remote.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker
  ) => {
    const { commands } = app;

    commands.addCommand(CommandIDs.insertCell, {
      label: 'Insert a %%remote cell',
      execute: async args => {
        const name = String(args['name'] ?? '');
        const panel = notebooks.currentWidget;
        if (!panel) {
          return false;
        }
        const notebook = panel.content;
        const current = notebook.activeCell;
        // An empty code cell (as left by Shift+Enter at the end) is reused, not skipped over.
        if (
          !current ||
          current.model.type !== 'code' ||
          current.model.sharedModel.getSource().trim() !== ''
        ) {
          NotebookActions.insertBelow(notebook);
        }
        const cell = notebook.activeCell;
        if (!cell) {
          return false;
        }
        cell.model.sharedModel.setSource(`%%remote ${name}\n`);
        shell.activateById(panel.id);
        // Activating the panel focuses the notebook (command mode) once its messages run:
        // enter edit mode after that, with the cursor on the line below the magic, so that
        // typing goes into the cell and never fires command-mode shortcuts (m, d d, ...).
        await cell.ready;
        await new Promise(resolve => requestAnimationFrame(resolve));
        notebook.mode = 'edit';
        cell.editor?.setCursorPosition({ line: 1, column: 0 });
        cell.editor?.focus();
        return true;
      }
    });

    // Dashboard tabs and panes by cluster, so that Shut down can close them.
    const dashboards = new Map<string, Set<MainAreaWidget>>();

    commands.addCommand(CommandIDs.openDashboard, {
      label: 'Open a Dask dashboard',
      execute: args => {
        const name = String(args['name'] ?? 'cluster');
        const plot = args['plot'] ? String(args['plot']) : null;
        const url = Private.plotUrl(String(args['url'] ?? ''), plot);
        const id = `jupyter-remote-dashboard-${name}${plot ? `-${plot}` : ''}`;
        const open = [...(dashboards.get(name) ?? [])].find(w => w.id === id);
        if (open) {
          shell.activateById(id);
          return;
        }
        const frame = new IFrame({
          sandbox: ['allow-scripts', 'allow-same-origin', 'allow-popups', 'allow-forms']
        });
        frame.url = url;
        const widget = new MainAreaWidget({ content: frame });
        widget.id = id;
        const label = PLOTS.find(p => p.path === plot)?.label;
        widget.title.label = label ? `${label}: ${name}` : `Dashboard: ${name}`;
        widget.title.closable = true;
        widget.addClass('jr-Dashboard');
        if (plot) {
          widget.addClass('jr-mod-plot');
          widget.node.dataset.plot = plot;
        }
        const mine = dashboards.get(name) ?? new Set<MainAreaWidget>();
        dashboards.set(name, mine);
        mine.add(widget);
        widget.disposed.connect(() => mine.delete(widget));
        // A plot docks beside the notebook (below the cluster's previous plot, if any);
        // the whole dashboard opens as a tab of its own.
        const previous = [...mine].find(w => w !== widget && w.hasClass('jr-mod-plot'));
        const notebook = notebooks.currentWidget;
        if (plot && previous) {
          shell.add(widget, 'main', { mode: 'split-bottom', ref: previous.id });
        } else if (plot && notebook) {
          shell.add(widget, 'main', { mode: 'split-right', ref: notebook.id });
        } else {
          shell.add(widget, 'main');
        }
        shell.activateById(widget.id);
      }
    });

    const sidebar = new ClusterSidebar({
      insertCell: name => {
        if (!notebooks.currentWidget) {
          return false;
        }
        void commands.execute(CommandIDs.insertCell, { name });
        return true;
      },
      openDashboard: (name, url, plot) =>
        void commands.execute(CommandIDs.openDashboard, { name, url, plot }),
      closeDashboards: name => {
        for (const widget of [...(dashboards.get(name) ?? [])]) {
          widget.dispose();
        }
        dashboards.delete(name);
      }
    });
    // The card of the cluster the notebook in front uses is marked.
    const follow = () => sidebar.setActiveNotebook(notebooks.currentWidget?.context.path ?? null);
    notebooks.currentChanged.connect(follow);
    notebooks.widgetAdded.connect((_, panel) => panel.context.pathChanged.connect(follow));
    follow();
    sidebar.title.icon = clusterIcon;

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh remote clusters',
      execute: () => sidebar.refresh()
    });

    shell.add(sidebar, 'left', { rank: 750 });
  }
};

export default plugin;

namespace Private {
  /**
   * The URL of one of the dashboard's individual plots, on the same server (and through the
   * same authenticated proxy) as its status page; the status page itself for null.
   */
  export function plotUrl(url: string, plot: string | null): string {
    if (!plot) {
      return url;
    }
    const base = url.replace(/\/status\/?$/, '').replace(/\/+$/, '');
    return `${base}/${plot}`;
  }
}
