/** The name others see beside this person's cursor; kept per browser, editable in the status bar. */

const NAME_KEY = 'wharf.user.name';
const COLORS = ['#e06c75', '#98c379', '#e5c07b', '#61afef', '#c678dd', '#56b6c2', '#d19a66', '#f78c6c'];

export type Identity = { name: string; color: string };

export function pickColor(seed: string): string {
  let hash = 0;
  for (let i = 0; i < seed.length; i++) hash = (hash * 31 + seed.charCodeAt(i)) >>> 0;
  return COLORS[hash % COLORS.length];
}

export function loadIdentity(): Identity {
  let name = '';
  try {
    name = localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    // storage can be disabled; a generated name still works for this page
  }
  if (!name) {
    name = `Guest ${Math.floor(1000 + Math.random() * 9000)}`;
    saveIdentityName(name);
  }
  return { name, color: pickColor(name) };
}

export function saveIdentityName(name: string): void {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // see loadIdentity
  }
}
