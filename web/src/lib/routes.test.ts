import { describe, expect, it } from 'vitest';
import { buildWorkspacePath, parseRoute } from './routes.ts';

describe('parseRoute', () => {
  it('maps the paths the server hands to the single page', () => {
    expect(parseRoute('/')).toEqual({ view: 'list' });
    expect(parseRoute('/workspaces/demo')).toEqual({ view: 'workspace', id: 'demo' });
    expect(parseRoute('/workspaces/demo/')).toEqual({ view: 'workspace', id: 'demo' });
    expect(parseRoute('/share/demo/t1')).toEqual({ view: 'share', workspace: 'demo', terminal: 't1' });
  });

  it('treats unknown and malformed paths as missing instead of throwing', () => {
    expect(parseRoute('/nope')).toEqual({ view: 'missing' });
    expect(parseRoute('/workspaces')).toEqual({ view: 'missing' });
    expect(parseRoute('/share/demo')).toEqual({ view: 'missing' });
    expect(parseRoute('/workspaces/%E0%A4%A')).toEqual({ view: 'missing' });
  });

  it('round-trips a workspace path', () => {
    expect(parseRoute(buildWorkspacePath('my-app'))).toEqual({ view: 'workspace', id: 'my-app' });
  });
});
