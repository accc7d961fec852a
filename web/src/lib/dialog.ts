import { h } from './dom.ts';

/** Opens a modal with the given body; resolves with what `settle` is called with. */
export function openModal<T>(title: string, build: (settle: (value: T | undefined) => void) => Node[], options: { className?: string } = {}): Promise<T | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const settle = (value: T | undefined) => {
      if (done) return;
      done = true;
      backdrop.remove();
      document.removeEventListener('keydown', onKey, true);
      resolve(value);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        settle(undefined);
      }
    };
    const dialog = h('div', { class: `modal ${options.className ?? ''}`, role: 'dialog', 'aria-modal': 'true', 'aria-label': title }, h('h3', {}, title), ...build(settle));
    const backdrop = h('div', { class: 'modal-backdrop', onmousedown: (e: MouseEvent) => e.target === backdrop && settle(undefined) }, dialog);
    document.addEventListener('keydown', onKey, true);
    document.body.append(backdrop);
    dialog.querySelector<HTMLElement>('[autofocus]')?.focus();
  });
}

/** Asks for one line of text; `undefined` when cancelled. */
export function askText(title: string, options: { initial?: string; label?: string; confirmLabel?: string; validate?: (value: string) => string | undefined } = {}): Promise<string | undefined> {
  return openModal<string>(title, (settle) => {
    const input = h('input', { type: 'text', value: options.initial ?? '', autofocus: true, spellcheck: false, 'aria-label': options.label ?? title });
    const error = h('div', { class: 'form-error', role: 'alert' });
    const submit = (e: Event) => {
      e.preventDefault();
      const value = input.value.trim();
      const problem = value ? options.validate?.(value) : 'Enter a value.';
      if (problem) {
        error.textContent = problem;
        return;
      }
      settle(value);
    };
    queueMicrotask(() => {
      // Select the name but not the extension, as file managers do.
      const dot = input.value.lastIndexOf('.');
      input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
    });
    return [
      h(
        'form',
        { class: 'form', onsubmit: submit },
        options.label ? h('label', {}, options.label, input) : input,
        error,
        h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => settle(undefined) }, 'Cancel'), h('button', { type: 'submit' }, options.confirmLabel ?? 'OK')),
      ),
    ];
  });
}

export function confirmAction(title: string, message: string, confirmLabel = 'Delete', dismissLabel = 'Cancel'): Promise<boolean> {
  return openModal<boolean>(title, (settle) => [
    h('p', {}, message),
    h(
      'div',
      { class: 'form-actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => settle(false) }, dismissLabel),
      h('button', { type: 'button', class: 'danger', autofocus: true, onclick: () => settle(true) }, confirmLabel),
    ),
  ]).then((v) => v === true);
}
