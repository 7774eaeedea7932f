import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElection, type ChannelLike, type LockManagerLike } from '../src/leader';

/** A Web Locks stand-in with the parts the election uses: queueing, signal, steal. */
class FakeLocks implements LockManagerLike {
  private holder: { release: () => void; reject: (e: Error) => void } | null = null;
  private queue: { run: () => void; signal?: AbortSignal }[] = [];

  request(_name: string, options: { steal?: boolean; signal?: AbortSignal }, callback: () => Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const run = () => {
        let released = false;
        const done = () => {
          if (released) return;
          released = true;
          this.holder = null;
          this.next();
        };
        this.holder = { release: done, reject: (e) => { done(); reject(e); } };
        callback().then((value) => { if (!released) { done(); resolve(value); } });
      };
      if (options.steal) {
        const old = this.holder;
        this.holder = null;
        old?.reject(new Error('AbortError'));
        this.queue = this.queue.filter((q) => q.run !== run);
        run();
        return;
      }
      options.signal?.addEventListener('abort', () => {
        this.queue = this.queue.filter((q) => q.run !== run);
        reject(new Error('AbortError'));
      });
      this.queue.push({ run, signal: options.signal });
      if (!this.holder) this.next();
    });
  }

  private next() {
    const item = this.queue.shift();
    item?.run();
  }
}

/** BroadcastChannel between "tabs" that can be frozen (stop delivering and sending). */
class Bus {
  members = new Set<FakeChannel>();
}
class FakeChannel implements ChannelLike {
  frozen = false;
  private listeners = new Set<(event: MessageEvent) => void>();
  constructor(private bus: Bus) {
    bus.members.add(this);
  }
  postMessage(data: unknown) {
    if (this.frozen) return;
    for (const other of this.bus.members) if (other !== this && !other.frozen) other.listeners.forEach((l) => l({ data } as MessageEvent));
  }
  addEventListener(_t: 'message', l: (event: MessageEvent) => void) { this.listeners.add(l); }
  removeEventListener(_t: 'message', l: (event: MessageEvent) => void) { this.listeners.delete(l); }
  close() { this.bus.members.delete(this); }
}

function tab(locks: FakeLocks, bus: Bus) {
  const channel = new FakeChannel(bus);
  const changes: boolean[] = [];
  const election = new LeaderElection('leader', { locks, channel, heartbeatMs: 1_000, staleMs: 4_000, onChange: (v) => changes.push(v) });
  return { election, channel, changes };
}

/** `n` tabs that joined the election, after the first one took the lock. */
async function startTabs(n: number) {
  const locks = new FakeLocks();
  const bus = new Bus();
  const tabs = Array.from({ length: n }, () => tab(locks, bus));
  tabs.forEach((t) => t.election.start());
  await vi.advanceTimersByTimeAsync(10);
  return tabs;
}

describe('leader election', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('elects exactly one leader among six tabs', async () => {
    const tabs = await startTabs(6);
    expect(tabs.filter((t) => t.election.isLeader)).toHaveLength(1);
  });

  it('hands over when the leader closes', async () => {
    const [a, b] = (await startTabs(2)) as [ReturnType<typeof tab>, ReturnType<typeof tab>];
    expect(a.election.isLeader).toBe(true);
    a.election.stop();
    await vi.advanceTimersByTimeAsync(10);
    expect(b.election.isLeader).toBe(true);
  });

  it('replaces a frozen leader within seconds, and the old one steps down when it wakes', async () => {
    const [a, b] = (await startTabs(2)) as [ReturnType<typeof tab>, ReturnType<typeof tab>];
    expect(a.election.isLeader).toBe(true);
    a.channel.frozen = true; // frozen: holds the lock, sends no heartbeats
    await vi.advanceTimersByTimeAsync(6_000);
    expect(b.election.isLeader).toBe(true);
    a.channel.frozen = false;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.election.isLeader).toBe(false);
    expect([a, b].filter((t) => t.election.isLeader)).toHaveLength(1);
  });

  it('resigns on freeze and queues again on resume', async () => {
    const [a, b] = (await startTabs(2)) as [ReturnType<typeof tab>, ReturnType<typeof tab>];
    a.election.resign();
    await vi.advanceTimersByTimeAsync(10);
    expect(b.election.isLeader).toBe(true);
    a.election.rejoin();
    b.election.stop();
    await vi.advanceTimersByTimeAsync(10);
    expect(a.election.isLeader).toBe(true);
  });
});
