/**
 * One leader per browser and user, among all tabs: the leader alone follows the server (one
 * stream per browser, however many tabs) and shares what it hears over a BroadcastChannel.
 *
 * Election uses the Web Locks API: every tab asks for the same exclusive lock; the holder leads
 * until it closes (the browser releases the lock) or resigns (on `freeze`/`pagehide`). A leader
 * that is frozen without releasing (a throttled or suspended tab) stops sending heartbeats;
 * after {@link LeaderOptions.staleMs} without one, a waiting tab takes the lock with
 * `steal: true`. A leader that wakes up and hears another leader's heartbeat steps down.
 * No SharedWorker (Safari lacks it).
 */

export interface LockManagerLike {
  request(name: string, options: { mode?: 'exclusive'; steal?: boolean; signal?: AbortSignal }, callback: () => Promise<unknown>): Promise<unknown>;
}

export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface LeaderOptions {
  locks: LockManagerLike;
  channel: ChannelLike;
  heartbeatMs?: number;
  staleMs?: number;
  onChange(isLeader: boolean): void;
}

interface Heartbeat {
  type: 'leader-heartbeat';
  leaderId: string;
}

export class LeaderElection {
  readonly id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  isLeader = false;
  private release: (() => void) | undefined;
  private waiting: AbortController | undefined;
  private lastHeartbeat = Date.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = true;
  private readonly heartbeatMs: number;
  private readonly staleMs: number;

  constructor(
    private readonly lockName: string,
    private readonly options: LeaderOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1_000;
    this.staleMs = options.staleMs ?? 5_000;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastHeartbeat = Date.now();
    this.options.channel.addEventListener('message', this.onMessage);
    this.timer = setInterval(this.tick, this.heartbeatMs);
    this.queue(false);
  }

  /** Gives up leadership (and the queue) for good: the tab is closing or logging out. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.options.channel.removeEventListener('message', this.onMessage);
    this.waiting?.abort();
    this.resign();
  }

  /** Leaves leadership to another tab, then queues again (e.g. on `freeze`). */
  resign(): void {
    const release = this.release;
    this.release = undefined;
    if (this.isLeader) this.setLeader(false);
    release?.();
  }

  /** Rejoin the queue after a resignation (e.g. on `resume`). */
  rejoin(): void {
    if (!this.stopped && !this.isLeader && !this.waiting) this.queue(false);
  }

  private queue(steal: boolean): void {
    const waiting = steal ? undefined : new AbortController();
    this.waiting = waiting;
    const options = steal ? { mode: 'exclusive' as const, steal: true } : { mode: 'exclusive' as const, signal: waiting?.signal };
    let held = false;
    this.options.locks
      .request(this.lockName, options, () => {
        if (this.waiting === waiting) this.waiting = undefined;
        if (this.stopped) return Promise.resolve();
        held = true;
        return new Promise<void>((resolve) => {
          this.release = resolve;
          this.setLeader(true);
        });
      })
      .catch(() => {
        // AbortError: our wait was cancelled (we are stealing, or stopping), or another tab
        // stole the lock this request held. Only the latter ends our leadership.
        if (this.waiting === waiting) this.waiting = undefined;
        if (held && this.isLeader) {
          this.release = undefined;
          this.setLeader(false);
        }
        if (held) this.rejoin();
      });
  }

  private setLeader(isLeader: boolean): void {
    this.isLeader = isLeader;
    // A new follower gives the new leader a full staleness period before judging it.
    if (isLeader) this.beat();
    else this.lastHeartbeat = Date.now();
    this.options.onChange(isLeader);
  }

  private beat(): void {
    const heartbeat: Heartbeat = { type: 'leader-heartbeat', leaderId: this.id };
    this.options.channel.postMessage(heartbeat);
  }

  private readonly tick = (): void => {
    if (this.isLeader) return this.beat();
    if (!this.stopped && Date.now() - this.lastHeartbeat > this.staleMs) {
      // The leader went silent without releasing the lock: take over.
      this.lastHeartbeat = Date.now();
      this.waiting?.abort();
      this.waiting = undefined;
      this.queue(true);
    }
  };

  private readonly onMessage = (event: MessageEvent): void => {
    const message = event.data as Partial<Heartbeat>;
    if (message?.type !== 'leader-heartbeat' || message.leaderId === this.id) return;
    this.lastHeartbeat = Date.now();
    // Two leaders: we were frozen while another tab stole the lock. Step down and queue again.
    if (this.isLeader) {
      this.resign();
      this.rejoin();
    }
  };
}
