import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { Private } from './dom';
import { IAdaptive, IScaleRequest } from './models';

/**
 * The body of the Scale dialog: a fixed number of workers, or adaptive bounds.
 */
export class ScaleBody
  extends Widget
  implements Dialog.IBodyWidget<IScaleRequest | null>
{
  constructor(
    name: string,
    current: { workers: number; adaptive: IAdaptive | null }
  ) {
    super();
    this.addClass('jr-ScaleBody');
    const { el } = Private;
    const form = el('form', 'jr-Form jr-mod-dialog');
    form.setAttribute('aria-label', `Scale ${name}`);
    form.addEventListener('submit', event => event.preventDefault());
    this.mode = Private.select(
      [
        ['workers', 'Fixed number of workers'],
        ['adaptive', 'Adaptive (Dask adds and removes workers)']
      ],
      'mode'
    );
    this.mode.input.value = current.adaptive ? 'adaptive' : 'workers';
    form.appendChild(Private.field('Scaling', this.mode.node));

    this.workers = Private.input('number', 'workers');
    this.workers.min = '0';
    this.workers.value = String(current.workers);
    this.fixed = Private.field('Workers', this.workers);

    this.minimum = Private.input('number', 'minimum');
    this.minimum.min = '0';
    this.minimum.value = String(current.adaptive?.minimum ?? 0);
    this.maximum = Private.input('number', 'maximum');
    this.maximum.min = '0';
    this.maximum.value = String(current.adaptive?.maximum ?? Math.max(current.workers, 4));
    this.bounds = el('div', 'jr-Bounds');
    this.bounds.append(
      Private.field('Minimum workers', this.minimum),
      Private.field('Maximum workers', this.maximum)
    );
    form.append(this.fixed, this.bounds);
    this.node.appendChild(form);
    this.mode.input.addEventListener('change', () => this.showMode());
    this.showMode();
  }

  getValue(): IScaleRequest | null {
    if (this.mode.input.value === 'adaptive') {
      return {
        adaptive: {
          minimum: Number(this.minimum.value),
          maximum: Number(this.maximum.value)
        }
      };
    }
    return { workers: Number(this.workers.value) };
  }

  private showMode(): void {
    const adaptive = this.mode.input.value === 'adaptive';
    this.fixed.hidden = adaptive;
    this.bounds.hidden = !adaptive;
  }

  private readonly mode: { node: HTMLElement; input: HTMLSelectElement };
  private readonly workers: HTMLInputElement;
  private readonly minimum: HTMLInputElement;
  private readonly maximum: HTMLInputElement;
  private readonly fixed: HTMLElement;
  private readonly bounds: HTMLElement;
}
