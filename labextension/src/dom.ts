import { ApiError } from './api';

/**
 * Small DOM helpers shared by the sidebar's parts: JupyterLab's own styled controls
 * (`jp-mod-styled` buttons, inputs and selects) and labelled form fields.
 */
export namespace Private {
  let counter = 0;

  /** A document-unique id for a label's `for`. */
  export function uid(prefix: string): string {
    counter += 1;
    return `${prefix}-${counter}`;
  }

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

  /** A JupyterLab button (`jp-Button jp-mod-styled`, plus `jp-mod-accept` / `-warn` / ...). */
  export function button(
    label: string,
    className: string,
    onClick: () => unknown
  ): HTMLButtonElement {
    const node = el('button', `jp-Button jp-mod-styled jr-Button ${className}`.trim(), label);
    node.type = 'button';
    node.addEventListener('click', event => {
      event.preventDefault();
      void onClick();
    });
    return node;
  }

  export function input(type: string, name: string): HTMLInputElement {
    const node = el('input', 'jp-mod-styled jr-Input');
    node.type = type;
    node.name = name;
    return node;
  }

  /** A JupyterLab select (`jp-select-wrapper` around a `jp-mod-styled` select). */
  export function select(
    choices: Array<[string, string]>,
    name: string
  ): { node: HTMLElement; input: HTMLSelectElement } {
    const node = el('div', 'jp-select-wrapper jr-Select');
    const input = el('select', 'jp-mod-styled');
    input.name = name;
    for (const [value, text] of choices) {
      const option = el('option', '', text);
      option.value = value;
      input.appendChild(option);
    }
    input.addEventListener('focus', () => node.classList.add('jp-mod-focused'));
    input.addEventListener('blur', () => node.classList.remove('jp-mod-focused'));
    node.appendChild(input);
    return { node, input };
  }

  /** The control's id, given one if it has none. */
  function idOf(control: HTMLElement): string {
    const target = control.matches('input, select') ? control : control.querySelector('input, select');
    const node = (target ?? control) as HTMLElement;
    if (!node.id) {
      node.id = uid('jr-field');
    }
    return node.id;
  }

  /** A label above its control, and a help line below it that describes the control. */
  export function field(label: string, control: HTMLElement, help?: HTMLElement): HTMLElement {
    const row = el('div', 'jr-Field');
    const id = idOf(control);
    const labelNode = el('label', 'jr-Field-label', label);
    labelNode.htmlFor = id;
    row.append(labelNode, control);
    if (help) {
      describe(row, id, help);
    }
    return row;
  }

  /** A checkbox with its label beside it, then its help line. */
  export function checkField(
    label: string,
    control: HTMLInputElement,
    help?: HTMLElement
  ): HTMLElement {
    const row = el('div', 'jr-Field jr-mod-check');
    const id = idOf(control);
    const labelNode = el('label', 'jr-Field-label');
    labelNode.htmlFor = id;
    labelNode.append(control, document.createTextNode(` ${label}`));
    row.appendChild(labelNode);
    if (help) {
      describe(row, id, help);
    }
    return row;
  }

  function describe(row: HTMLElement, id: string, help: HTMLElement): void {
    help.id = `${id}-help`;
    row.appendChild(help);
    row.querySelector(`#${id}`)?.setAttribute('aria-describedby', help.id);
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
}
