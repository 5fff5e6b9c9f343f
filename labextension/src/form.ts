import { Private } from './dom';
import { ICreateRequest, ITemplate } from './models';

/**
 * Fill `form` with a template chooser, a name and the template's options, each label
 * above its input (the sidebar is narrow) and each option titled from the template.
 */
export function buildForm(
  form: HTMLFormElement,
  templates: ITemplate[],
  submit: (body: ICreateRequest) => Promise<void>,
  cancel: () => void
): void {
  const { el } = Private;
  form.replaceChildren();
  form.appendChild(el('h3', 'jr-Form-title', 'New cluster'));
  const select = Private.select(
    templates.map(t => [t.name, t.title]),
    'template'
  );
  const description = el('div', 'jr-Form-help');
  form.appendChild(Private.field('Template', select.node, description));
  const name = Private.input('text', 'name');
  name.placeholder = 'lab-1';
  form.appendChild(
    Private.field(
      'Name',
      name,
      el('div', 'jr-Form-help', 'Optional; left empty, the next free lab‑1, lab‑2, …')
    )
  );
  const optionsNode = el('div', 'jr-Form-options');
  form.appendChild(optionsNode);
  const inputs = new Map<string, [HTMLInputElement, string]>();

  const showTemplate = () => {
    const template = templates.find(t => t.name === select.input.value);
    optionsNode.replaceChildren();
    inputs.clear();
    description.textContent = template?.description ?? '';
    for (const option of template?.options ?? []) {
      const help = el('div', 'jr-Form-help', option.description);
      const title = option.title || option.name;
      if (option.type === 'bool') {
        const input = Private.input('checkbox', option.name);
        input.checked = Boolean(option.default);
        inputs.set(option.name, [input, option.type]);
        optionsNode.appendChild(Private.checkField(title, input, help));
        continue;
      }
      const input = Private.input(option.type === 'str' ? 'text' : 'number', option.name);
      input.value = option.default === null ? '' : String(option.default);
      if (option.minimum !== null && option.minimum !== undefined) {
        input.min = String(option.minimum);
      }
      if (option.type === 'float') {
        input.step = 'any';
      }
      inputs.set(option.name, [input, option.type]);
      optionsNode.appendChild(Private.field(title, input, help));
    }
  };
  select.input.addEventListener('change', showTemplate);
  showTemplate();

  const error = el('div', 'jr-Error');
  error.setAttribute('role', 'alert');
  error.hidden = true;
  const start = Private.button('Start', 'jp-mod-accept', async () => {
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
        template: select.input.value,
        options,
        ...(name.value ? { name: name.value } : {})
      });
      error.hidden = true;
    } catch (e) {
      error.textContent = Private.message(e);
      error.hidden = false;
    } finally {
      start.disabled = false;
    }
  });
  start.dataset.action = 'start-cluster';
  const actions = el('div', 'jr-Form-actions');
  const cancelButton = Private.button('Cancel', 'jp-mod-reject', cancel);
  cancelButton.dataset.action = 'cancel-form';
  actions.append(start, cancelButton);
  form.append(actions, error);
  form.addEventListener('submit', event => event.preventDefault());
}

