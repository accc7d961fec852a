import { describeError } from '../lib/api.ts';
import { askText, confirmAction } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { showToast } from '../lib/toast.ts';
import { deleteSet, getWorkspaceEnv, listConfigSets, listSecretSets, patchSecretSet, putConfigSet, putWorkspaceEnv, type SetKind } from './env-api.ts';

/** Shown for a secret's value: the server never sends it back. */
export const SECRET_MASK = '••••';

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SET_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export type EnvPanel = { element: HTMLElement; shown(): void };

type Row = { element: HTMLElement; read(): { name: string; value: string } | undefined; removed: boolean };

/**
 * A table of NAME / value rows that are all sent on Save (the workspace's variables, a config
 * set): the server's answer replaces the table.
 */
function plainEditor(initial: Record<string, string>, save: (variables: Record<string, string>) => Promise<Record<string, string>>): HTMLElement {
  const rows = h('div', { class: 'env-rows' });
  const error = h('div', { class: 'form-error', role: 'alert' });
  const list: Row[] = [];

  function addRow(name = '', value = ''): void {
    const nameInput = h('input', { type: 'text', value: name, placeholder: 'NAME', spellcheck: false, 'aria-label': 'Variable name', class: 'env-name' });
    const valueInput = h('input', { type: 'text', value, placeholder: 'value', spellcheck: false, 'aria-label': 'Value', class: 'env-value' });
    const row: Row = {
      element: h('div', { class: 'env-row' }),
      removed: false,
      read: () => (nameInput.value.trim() ? { name: nameInput.value.trim(), value: valueInput.value } : undefined),
    };
    const remove = h('button', { type: 'button', class: 'icon', title: 'Remove', 'aria-label': `Remove ${name || 'variable'}`, onclick: () => ((row.removed = true), row.element.remove()) }, '×');
    row.element.append(nameInput, valueInput, remove);
    list.push(row);
    rows.append(row.element);
  }

  function show(variables: Record<string, string>): void {
    list.splice(0);
    rows.replaceChildren();
    for (const [name, value] of Object.entries(variables).sort(([a], [b]) => (a < b ? -1 : 1))) addRow(name, value);
  }

  const saveButton: HTMLButtonElement = h(
    'button',
    {
      type: 'button',
      class: 'small',
      onclick: async () => {
        error.textContent = '';
        const variables: Record<string, string> = {};
        for (const row of list) {
          const entry = row.removed ? undefined : row.read();
          if (!entry) continue;
          if (!VARIABLE_NAME.test(entry.name)) return void (error.textContent = `"${entry.name}" is not a variable name: letters, digits and _, not starting with a digit.`);
          variables[entry.name] = entry.value;
        }
        saveButton.disabled = true;
        try {
          show(await save(variables));
          showToast('Saved.');
        } catch (err) {
          error.textContent = describeError(err);
        } finally {
          saveButton.disabled = false;
        }
      },
    },
    'Save',
  );
  show(initial);
  return h('div', { class: 'env-editor' }, rows, h('div', { class: 'env-actions' }, h('button', { type: 'button', class: 'secondary small', onclick: () => addRow() }, 'Add variable'), saveButton), error);
}

/**
 * A secret set: its names with •••• for values that cannot be read back. A new value can be
 * typed for a name (Replace) or a new name added; Save sends only those and the removals, so
 * the values it does not touch stay as they are.
 */
function secretEditor(keys: string[], save: (changes: Record<string, string | null>) => Promise<string[]>): HTMLElement {
  const rows = h('div', { class: 'env-rows' });
  const error = h('div', { class: 'form-error', role: 'alert' });
  let changes: Array<() => [string, string | null] | undefined | false> = [];

  function existingRow(name: string): void {
    const valueCell = h('span', { class: 'env-value env-masked', dataset: { secret: name } }, SECRET_MASK);
    let input: HTMLInputElement | undefined;
    let removed = false;
    const element = h('div', { class: 'env-row', dataset: { key: name } });
    const replace = h(
      'button',
      {
        type: 'button',
        class: 'secondary small',
        onclick: () => {
          if (input) return;
          input = h('input', { type: 'password', placeholder: `new value of ${name}`, autocomplete: 'new-password', 'aria-label': `New value of ${name}`, class: 'env-value' });
          valueCell.replaceWith(input);
          input.focus();
        },
      },
      'Replace',
    );
    const remove = h('button', { type: 'button', class: 'icon', title: 'Remove', 'aria-label': `Remove ${name}`, onclick: () => ((removed = true), element.remove()) }, '×');
    element.append(h('span', { class: 'env-name env-key' }, name), valueCell, replace, remove);
    rows.append(element);
    changes.push(() => (removed ? [name, null] : input && input.value !== '' ? [name, input.value] : undefined));
  }

  function newRow(): void {
    const nameInput = h('input', { type: 'text', placeholder: 'NAME', spellcheck: false, 'aria-label': 'Variable name', class: 'env-name' });
    const valueInput = h('input', { type: 'password', placeholder: 'value', autocomplete: 'new-password', 'aria-label': 'Value', class: 'env-value' });
    let removed = false;
    const element = h('div', { class: 'env-row' }, nameInput, valueInput);
    element.append(h('button', { type: 'button', class: 'icon', title: 'Remove', 'aria-label': 'Remove variable', onclick: () => ((removed = true), element.remove()) }, '×'));
    rows.append(element);
    changes.push(() => {
      const name = nameInput.value.trim();
      if (removed || !name) return undefined;
      return VARIABLE_NAME.test(name) ? [name, valueInput.value] : false;
    });
    nameInput.focus();
  }

  function show(names: string[]): void {
    changes = [];
    rows.replaceChildren();
    for (const name of names) existingRow(name);
    if (names.length === 0) newRow();
  }

  const saveButton: HTMLButtonElement = h(
    'button',
    {
      type: 'button',
      class: 'small',
      onclick: async () => {
        error.textContent = '';
        const patch: Record<string, string | null> = {};
        for (const change of changes) {
          const entry = change();
          if (entry === false) return void (error.textContent = 'A name must be letters, digits and _, not starting with a digit.');
          if (entry) patch[entry[0]] = entry[1];
        }
        if (Object.keys(patch).length === 0) return void (error.textContent = 'Nothing to save: add a variable or replace a value.');
        saveButton.disabled = true;
        try {
          show(await save(patch));
          showToast('Saved. Secret values cannot be read back.');
        } catch (err) {
          error.textContent = describeError(err);
        } finally {
          saveButton.disabled = false;
        }
      },
    },
    'Save',
  );
  show(keys);
  return h('div', { class: 'env-editor' }, rows, h('div', { class: 'env-actions' }, h('button', { type: 'button', class: 'secondary small', onclick: () => newRow() }, 'Add variable'), saveButton), error);
}

/**
 * The Environment panel (docs/hybrid.md): the workspace's variables, config sets and secret
 * sets that `wharf up` gives a service, editable. Secret values are write-only.
 */
export function createEnvPanel(workspace: string): EnvPanel {
  const specBody = h('div', { class: 'env-section-body' });
  const configBody = h('div', { class: 'env-section-body' });
  const secretBody = h('div', { class: 'env-section-body' });
  let loaded = false;

  async function load(): Promise<void> {
    try {
      const [spec, configSets, secretSets] = await Promise.all([getWorkspaceEnv(workspace), listConfigSets(workspace), listSecretSets(workspace)]);
      renderInto(specBody, plainEditor(spec, (variables) => putWorkspaceEnv(workspace, variables)));
      renderInto(configBody, ...(configSets.length ? configSets.map((s) => renderSet('config', s.name, plainEditor(s.variables, async (v) => (await putConfigSet(workspace, s.name, v)).variables))) : [h('p', { class: 'muted' }, 'No config sets.')]));
      renderInto(secretBody, ...(secretSets.length ? secretSets.map((s) => renderSet('secret', s.name, secretEditor(s.keys, async (p) => (await patchSecretSet(workspace, s.name, p)).keys))) : [h('p', { class: 'muted' }, 'No secret sets.')]));
      loaded = true;
    } catch (err) {
      renderInto(specBody, h('p', { class: 'form-error' }, `Could not read the environment: ${describeError(err)}`));
    }
  }

  function renderSet(kind: SetKind, name: string, editor: HTMLElement): HTMLElement {
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'danger small',
        onclick: async () => {
          if (!(await confirmAction(`Delete ${kind} set ${name}?`, `wharf up will no longer give its variables to the workspace's services.`))) return;
          try {
            await deleteSet(workspace, kind, name);
          } catch (err) {
            showToast(describeError(err), 'error');
          }
          await load();
        },
      },
      'Delete set',
    );
    return h('div', { class: 'env-set', dataset: { set: name, kind } }, h('div', { class: 'env-set-header' }, h('span', { class: 'env-set-name' }, name), remove), editor);
  }

  async function createSet(kind: SetKind): Promise<void> {
    const name = await askText(`New ${kind} set`, { label: 'Name', confirmLabel: 'Create', validate: (v) => (SET_NAME.test(v) ? undefined : 'Lower-case letters, digits and -, at most 63.') });
    if (!name) return;
    const body = kind === 'config' ? configBody : secretBody;
    if (body.querySelector(`[data-set="${name}"]`)) return showToast(`There is a ${kind} set "${name}" already.`, 'warning');
    // The set exists once it is saved with a first variable.
    body.querySelector('p.muted')?.remove();
    const editor =
      kind === 'config'
        ? plainEditor({}, async (v) => (await putConfigSet(workspace, name, v)).variables)
        : secretEditor([], async (p) => (await patchSecretSet(workspace, name, p)).keys);
    body.append(renderSet(kind, name, editor));
  }

  const section = (title: string, hint: string, body: HTMLElement, action?: HTMLElement) =>
    h('section', { class: 'env-section' }, h('div', { class: 'env-section-header' }, h('h4', {}, title), h('span', { class: 'muted' }, hint), action), body);

  const element = h(
    'div',
    { class: 'env-panel' },
    h('p', { class: 'muted env-intro' }, 'What "wharf up <service>" runs its local command with, under the service\'s own process environment (started with WHARF_SERVICE=<service>) and the manifest\'s. See docs/hybrid.md.'),
    section('Workspace variables', 'the "spec" layer', specBody),
    section('Config sets', 'every set applies; a later name wins', configBody, h('button', { type: 'button', class: 'secondary small', onclick: () => void createSet('config') }, 'New config set')),
    section('Secret sets', 'values are write-only', secretBody, h('button', { type: 'button', class: 'secondary small', onclick: () => void createSet('secret') }, 'New secret set')),
  );

  return {
    element,
    shown() {
      if (!loaded) void load();
    },
  };
}
