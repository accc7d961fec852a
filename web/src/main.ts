import './styles.css';
import { h, renderInto } from './lib/dom.ts';
import { describeError } from './lib/api.ts';
import { parseRoute } from './lib/routes.ts';

async function renderRoute(root: HTMLElement): Promise<void> {
  const route = parseRoute(location.pathname);
  switch (route.view) {
    case 'list': {
      const { showWorkspaceList } = await import('./views/workspace-list.ts');
      return showWorkspaceList(root);
    }
    case 'workspace': {
      // Monaco and xterm are large: only the views that need them pull them in.
      const { showWorkspace } = await import('./views/workspace-view.ts');
      return showWorkspace(root, route.id);
    }
    case 'share': {
      const { showSharedTerminal } = await import('./views/share-page.ts');
      return showSharedTerminal(root, route.workspace, route.terminal);
    }
    default:
      renderInto(root, h('div', { class: 'page-message' }, h('h2', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to workspaces'))));
  }
}

const root = document.getElementById('app')!;
renderRoute(root).catch((err: unknown) => {
  renderInto(root, h('div', { class: 'page-message error' }, h('h2', {}, 'Something went wrong'), h('p', {}, describeError(err))));
});
