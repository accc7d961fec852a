import { ApiError, describeError } from '../lib/api.ts';
import { confirmAction } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { formatBytes, formatDuration } from '../lib/format.ts';
import { showToast } from '../lib/toast.ts';
import { buildEventsUrl, cancelRun, getRun, listRuns, startRun, type DeployEvent, type DeployRun, type DeployStatus } from './deploy-api.ts';
import { describeCancelProblem, summarizeRun } from './run-summary.ts';

type CommandView = {
  section: HTMLDetailsElement;
  state: HTMLElement;
  duration: HTMLElement;
  output: HTMLElement;
  /** The user opened or closed it: stop opening and closing it for them. */
  touched: boolean;
  startedAt?: number;
};

/** Renders one run's events as they come: phases, warnings, and a collapsible log per command. */
class RunLogView {
  readonly element: HTMLElement;
  private readonly header: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly timer: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly notes: HTMLElement;
  private readonly commandsList: HTMLElement;
  private readonly commands = new Map<number, CommandView>();
  private status: DeployStatus = 'running';
  kind: 'deploy' | 'destroy';
  private readonly startedAtMs: number;
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    run: Pick<DeployRun, 'id' | 'kind' | 'status' | 'startedAt' | 'commands' | 'mode'>,
    private readonly actions: { cancel?: () => void } = {},
  ) {
    this.kind = run.kind;
    this.startedAtMs = Date.parse(run.startedAt) || Date.now();
    this.summary = h('span', { class: 'run-summary' });
    this.timer = h('span', { class: 'run-duration muted' });
    this.cancelButton = h('button', { type: 'button', class: 'secondary small run-cancel', title: 'Stop this run: the running command is stopped, later ones do not run', hidden: true, onclick: () => actions.cancel?.() }, 'Cancel');
    this.header = h('div', { class: 'run-header' }, h('span', { class: 'badge run-status' }), this.summary, this.timer, this.cancelButton);
    this.notes = h('div', { class: 'run-notes' });
    this.commandsList = h('div', { class: 'run-commands' });
    this.element = h('div', { class: 'run-log', dataset: { run: run.id } }, this.header, this.notes, this.commandsList);
    for (const c of run.commands) this.ensureCommand(c.index, c.name, c.command);
    this.setStatus(run.status);
    if (run.status === 'running') this.ticker = setInterval(() => this.tick(), 500);
  }

  dispose(): void {
    clearInterval(this.ticker);
  }

  private tick(): void {
    this.timer.textContent = formatDuration(Date.now() - this.startedAtMs);
    for (const view of this.commands.values()) {
      if (view.startedAt !== undefined && view.state.dataset.state === 'running') view.duration.textContent = formatDuration(Date.now() - view.startedAt);
    }
  }

  get running(): boolean {
    return this.status === 'running';
  }

  private setStatus(status: DeployStatus, summary?: string): void {
    this.status = status;
    this.element.dataset.status = status;
    this.cancelButton.hidden = status !== 'running' || !this.actions.cancel;
    const badge = this.header.querySelector<HTMLElement>('.run-status')!;
    badge.className = `badge run-status status-${status}`;
    badge.textContent = status;
    this.summary.textContent = summary ?? summarizeRun({ kind: this.kind, status, durationMs: null });
  }

  private note(text: string, kind: 'phase' | 'warning' | 'info' | 'log', attrs: Record<string, string> = {}): void {
    this.notes.append(h('div', { class: `run-note ${kind}`, ...attrs }, text));
  }

  /** While a cancel request is out, the button says so and cannot be pressed twice. */
  setCancelling(cancelling: boolean): void {
    this.cancelButton.disabled = cancelling;
    this.cancelButton.textContent = cancelling ? 'Cancelling…' : 'Cancel';
  }

  reportCancelProblem(text: string): void {
    this.note(text, 'warning', { role: 'alert', 'data-cancel-problem': '' });
  }

  private ensureCommand(index: number, name: string, command: string): CommandView {
    const existing = this.commands.get(index);
    if (existing) return existing;
    const state = h('span', { class: 'command-state', dataset: { state: 'pending' } }, 'pending');
    const duration = h('span', { class: 'command-duration muted' });
    const output = h('pre', { class: 'command-output' });
    const section = h(
      'details',
      { class: 'command', dataset: { index: String(index) } },
      h('summary', {}, h('span', { class: 'command-index' }, `${index}.`), h('span', { class: 'command-name' }, name), state, duration, h('code', { class: 'command-text muted' }, command === name ? '' : command)),
      output,
    );
    const view: CommandView = { section, state, duration, output, touched: false };
    // Only clicks count as the user's choice, not our own opening and closing.
    section.querySelector('summary')!.addEventListener('click', () => (view.touched = true));
    this.commands.set(index, view);
    const later = [...this.commandsList.children].find((el) => Number((el as HTMLElement).dataset.index) > index);
    this.commandsList.insertBefore(section, later ?? null);
    return view;
  }

  private setCommandState(view: CommandView, state: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled', label: string = state): void {
    view.state.dataset.state = state;
    view.state.textContent = label;
    view.section.dataset.state = state;
  }

  handle(event: DeployEvent): void {
    switch (event.type) {
      case 'plan':
        this.kind = event.kind;
        for (const c of event.commands) this.ensureCommand(c.index, c.name, c.command);
        this.note(`${event.kind === 'deploy' ? 'Deploying' : 'Destroying'} ${event.mode === 'remote' ? `remotely${event.image ? ` in ${event.image}` : ''}` : 'locally in the workspace'}: ${event.commands.length} command${event.commands.length === 1 ? '' : 's'}.`, 'info');
        break;
      case 'phase':
        this.note(event.message, 'phase');
        break;
      case 'context':
        this.note(`Context: ${event.files} files, ${formatBytes(event.bytes)}.${event.hint ? ` ${event.hint}` : ''}`, 'info');
        break;
      case 'warning':
        this.note(event.message, 'warning');
        break;
      case 'log':
        this.note(event.text.replace(/\n$/, ''), 'log');
        break;
      case 'command-start': {
        for (const other of this.commands.values()) {
          if (!other.touched && other.state.dataset.state === 'succeeded') other.section.open = false;
        }
        const view = this.ensureCommand(event.index, event.name, event.command);
        view.startedAt = Date.now();
        this.setCommandState(view, 'running', 'running…');
        if (!view.touched) view.section.open = true;
        break;
      }
      case 'output': {
        const view = this.ensureCommand(event.index, `command ${event.index}`, '');
        const atBottom = view.output.scrollTop + view.output.clientHeight >= view.output.scrollHeight - 4;
        view.output.append(event.stream === 'stderr' ? h('span', { class: 'stderr' }, event.text) : event.text);
        if (atBottom) view.output.scrollTop = view.output.scrollHeight;
        break;
      }
      case 'command-end': {
        const view = this.ensureCommand(event.index, `command ${event.index}`, '');
        const ok = event.exitCode === 0;
        this.setCommandState(view, ok ? 'succeeded' : 'failed', ok ? 'succeeded' : `failed (exit ${event.exitCode})`);
        view.duration.textContent = formatDuration(event.durationMs);
        if (!ok && !view.touched) view.section.open = true;
        break;
      }
      case 'done':
        clearInterval(this.ticker);
        this.timer.textContent = formatDuration(event.durationMs);
        this.setStatus(event.status, summarizeRun({ kind: this.kind, status: event.status, durationMs: event.durationMs, failedCommand: event.failedCommand, message: event.message }));
        for (const view of this.commands.values()) {
          if (view.state.dataset.state === 'pending') this.setCommandState(view, 'pending', 'not run');
          else if (view.state.dataset.state === 'running') {
            if (event.status === 'cancelled') this.setCommandState(view, 'cancelled', 'cancelled');
            else this.setCommandState(view, 'failed', 'interrupted');
          }
        }
        break;
    }
  }

  markTruncated(): void {
    this.note('Part of this log was dropped to keep the history bounded.', 'warning');
  }

  markLost(reason: string): void {
    if (this.status === 'running') this.note(`Live log interrupted: ${reason}`, 'warning');
  }
}

export type DeployPanel = {
  element: HTMLElement;
  deploy(kind: 'deploy' | 'destroy'): Promise<void>;
  shown(): void;
  dispose(): void;
};

/** History of a workspace's deploys beside the log of the one selected (the newest by default). */
export function createDeployPanel(workspace: string, events: { onRunStateChange(running: boolean): void }): DeployPanel {
  const history = h('ul', { class: 'deploy-history', 'aria-label': 'Deploy history' });
  const logHost = h('div', { class: 'deploy-log' }, h('p', { class: 'muted' }, 'Press Deploy to run the commands of okteto.yml.'));
  const element = h('div', { class: 'deploy-panel' }, h('div', { class: 'deploy-sidebar' }, h('div', { class: 'deploy-sidebar-title' }, 'History'), history), logHost);
  let shownRun: string | undefined;
  let view: RunLogView | undefined;
  let socket: WebSocket | undefined;
  let loadedHistory = false;

  function detach(): void {
    socket?.close(1000);
    socket = undefined;
    view?.dispose();
    view = undefined;
  }

  async function refreshHistory(): Promise<DeployRun[]> {
    const runs = await listRuns(workspace);
    loadedHistory = true;
    renderInto(
      history,
      ...(runs.length
        ? runs.map((run) =>
            h(
              'li',
              { class: `history-item${run.id === shownRun ? ' selected' : ''}`, dataset: { run: run.id, status: run.status }, tabindex: 0, onclick: () => void showRun(run), onkeydown: (e: KeyboardEvent) => e.key === 'Enter' && void showRun(run) },
              h('span', { class: `badge status-${run.status}` }, run.status),
              h('span', {}, `${run.kind} · ${new Date(run.startedAt).toLocaleTimeString()}`),
              h('span', { class: 'muted' }, run.durationMs === null ? '' : formatDuration(run.durationMs)),
            ),
          )
        : [h('li', { class: 'muted' }, 'No deploys yet.')]),
    );
    events.onRunStateChange(runs.some((r) => r.status === 'running'));
    return runs;
  }

  /**
   * Asks first, as for other actions that stop work in progress (closing a terminal, deleting);
   * "Keep running" rather than the usual "Cancel" beside "Cancel deploy".
   */
  function confirmCancel(kind: 'deploy' | 'destroy'): Promise<boolean> {
    const message = `Stop this ${kind}? The running command is stopped and the commands after it do not run; what has already run is not undone.`;
    return confirmAction(`Cancel ${kind}`, message, `Cancel ${kind}`, 'Keep running');
  }

  async function cancelShown(runId: string, logView: RunLogView): Promise<void> {
    if (!(await confirmCancel(logView.kind)) || !logView.running) return;
    logView.setCancelling(true);
    try {
      const run = await cancelRun(workspace, runId);
      if (run.status === 'running') {
        logView.setCancelling(false);
        logView.reportCancelProblem(describeCancelProblem(logView.kind, 'still-stopping'));
      } else if (logView.running && !(view === logView && socket)) {
        // No live socket will bring the end (it was lost): show it from the answer.
        logView.handle({ type: 'done', at: run.durationMs ?? 0, status: run.status, failedCommand: run.failedCommand, message: run.message, durationMs: run.durationMs ?? 0 });
      }
    } catch (err) {
      logView.setCancelling(false);
      logView.reportCancelProblem(describeCancelProblem(logView.kind, err));
    }
    void refreshHistory().catch(() => undefined);
  }

  function follow(runId: string, logView: RunLogView): void {
    const ws = new WebSocket(buildEventsUrl(workspace, runId));
    socket = ws;
    ws.onmessage = (message) => {
      if (ws !== socket || typeof message.data !== 'string') return;
      let event: DeployEvent;
      try {
        event = JSON.parse(message.data) as DeployEvent;
      } catch {
        return;
      }
      logView.handle(event);
      if (event.type === 'done') void refreshHistory().catch(() => undefined);
    };
    ws.onclose = (close) => {
      if (ws !== socket) return;
      socket = undefined;
      // The socket ended before the run's end reached this view (dropped on a busy machine or
      // network): ask the server how the run stands instead of showing "running" forever.
      if (logView.running) void recoverEnd(runId, logView, close.reason || `connection closed (${close.code})`);
      void refreshHistory().catch(() => undefined);
    };
  }

  async function recoverEnd(runId: string, logView: RunLogView, reason: string): Promise<void> {
    try {
      const run = await getRun(workspace, runId);
      if (view !== logView || !logView.running) return;
      if (run.status !== 'running') {
        await showRun(run);
        return;
      }
    } catch {
      // Shown as lost below.
    }
    if (view === logView) logView.markLost(reason);
  }

  async function showRun(run: Pick<DeployRun, 'id' | 'kind' | 'status' | 'startedAt' | 'commands' | 'mode'>): Promise<void> {
    detach();
    shownRun = run.id;
    for (const item of history.querySelectorAll<HTMLElement>('.history-item')) item.classList.toggle('selected', item.dataset.run === run.id);
    if (run.status === 'running') {
      // The events socket replays everything so far, then streams.
      const logView: RunLogView = new RunLogView({ ...run, commands: [] }, { cancel: () => void cancelShown(run.id, logView) });
      view = logView;
      renderInto(logHost, logView.element);
      follow(run.id, logView);
      return;
    }
    try {
      const full = await getRun(workspace, run.id);
      if (shownRun !== run.id) return;
      const logView = new RunLogView({ ...full, commands: [] });
      view = logView;
      for (const event of full.events ?? []) logView.handle(event);
      if (full.logTruncated) logView.markTruncated();
      renderInto(logHost, logView.element);
    } catch (err) {
      renderInto(logHost, h('p', { class: 'form-error' }, describeError(err)));
    }
  }

  return {
    element,
    async deploy(kind) {
      try {
        const started = await startRun(workspace, kind);
        events.onRunStateChange(true);
        await showRun({ id: started.id, kind, status: 'running', startedAt: new Date().toISOString(), commands: [], mode: null });
        await refreshHistory();
      } catch (err) {
        showToast(`${kind === 'deploy' ? 'Deploy' : 'Destroy'} did not start: ${describeError(err)}`, 'error');
        // Already running (started elsewhere): show that run instead.
        const running = err instanceof ApiError && err.status === 409 ? err.details?.id : undefined;
        if (typeof running === 'string') {
          const runs = await refreshHistory().catch(() => []);
          const run = runs.find((r) => r.id === running);
          if (run) await showRun(run);
        }
      }
    },
    shown() {
      if (loadedHistory) return;
      refreshHistory()
        .then((runs) => {
          if (!shownRun && runs[0]) void showRun(runs[0]);
        })
        .catch((err) => renderInto(logHost, h('p', { class: 'form-error' }, describeError(err))));
    },
    dispose() {
      detach();
    },
  };
}
