import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { ClusterSidebar } from './sidebar';

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
      execute: args => {
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
        notebook.mode = 'edit';
        return true;
      }
    });

    commands.addCommand(CommandIDs.openDashboard, {
      label: 'Open a Dask dashboard',
      execute: args => {
        const url = String(args['url'] ?? '');
        const name = String(args['name'] ?? 'cluster');
        const frame = new IFrame({
          sandbox: ['allow-scripts', 'allow-same-origin', 'allow-popups', 'allow-forms']
        });
        frame.url = url;
        const widget = new MainAreaWidget({ content: frame });
        widget.id = `jupyter-remote-dashboard-${name}`;
        widget.title.label = `Dashboard: ${name}`;
        widget.title.closable = true;
        shell.add(widget, 'main');
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
      openDashboard: (name, url) =>
        void commands.execute(CommandIDs.openDashboard, { name, url })
    });
    sidebar.title.icon = clusterIcon;

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh remote clusters',
      execute: () => sidebar.refresh()
    });

    shell.add(sidebar, 'left', { rank: 750 });
  }
};

export default plugin;
