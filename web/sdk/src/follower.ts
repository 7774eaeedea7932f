/**
 * Follows the library version: the event stream when it works, polling when it does not.
 *
 * - Stream: `GET /api/library-version-events`, reconnecting after a full-jitter backoff that
 *   honours the server's `retry:` hint and resets once an event arrives.
 * - After {@link STREAM_FAILURES_BEFORE_POLLING} failures in a row without any event (a proxy
 *   that buffers or cuts streams), poll `GET /api/library/version` with {@link pollingDelay}
 *   and try the stream again every {@link STREAM_RETRY_WHILE_POLLING_MS}.
 * - Offline: nothing runs; {@link VersionFollower.wake} (on `online`) restarts at once.
 * - A 401 stops everything and reports the session as ended.
 *
 * Only the leader tab runs one (see `leader.ts`), so a browser holds one stream, not one per tab.
 */
import { fullJitterDelay, pollingDelay, STREAM_BACKOFF, STREAM_FAILURES_BEFORE_POLLING, STREAM_RETRY_WHILE_POLLING_MS } from './backoff';
import { SseParser } from './sse';
import type { CachedVersion } from './types';

export interface FollowerEnvironment {
  fetch: typeof fetch;
  /** `GET /api/library/version`; throws when it fails. */
  poll(): Promise<CachedVersion>;
  isOnline(): boolean;
  isVisible(): boolean;
  random?: () => number;
  streamUrl?: string;
}

export interface FollowerListener {
  version(version: CachedVersion): void;
  connection(state: { streaming: boolean; polling: boolean }): void;
  authLost(): void;
}

export class VersionFollower {
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private abort: AbortController | undefined;
  private attempt = 0;
  private failuresWithoutEvent = 0;
  private pollingUntil = 0;
  private lastEventId: string | undefined;
  private retryHintMs = 0;
  streaming = false;

  constructor(
    private readonly env: FollowerEnvironment,
    private readonly listener: FollowerListener,
  ) {}

  get polling(): boolean {
    return this.pollingUntil > Date.now();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.setStreaming(false);
  }

  /** Back online or visible again: skip the remaining wait. */
  wake(): void {
    if (!this.running || this.streaming) return;
    this.attempt = 0;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.step(), delayMs);
  }

  private async step(): Promise<void> {
    if (!this.running || !this.env.isOnline()) return;
    if (this.polling) return this.pollOnce();
    await this.streamOnce();
    if (!this.running) return;
    if (this.failuresWithoutEvent >= STREAM_FAILURES_BEFORE_POLLING) {
      this.failuresWithoutEvent = 0;
      this.pollingUntil = Date.now() + STREAM_RETRY_WHILE_POLLING_MS;
      this.report();
      return this.pollOnce();
    }
    this.schedule(fullJitterDelay(this.attempt++, STREAM_BACKOFF, this.env.random, this.retryHintMs));
  }

  private async pollOnce(): Promise<void> {
    try {
      this.listener.version(await this.env.poll());
    } catch (error) {
      if ((error as { status?: number }).status === 401) return this.authLost();
    }
    if (!this.running) return;
    if (!this.polling) {
      this.report();
      return this.schedule(0);
    }
    const delay = pollingDelay({ visible: this.env.isVisible(), online: this.env.isOnline() }, this.env.random);
    if (delay !== null) this.schedule(delay);
  }

  private async streamOnce(): Promise<void> {
    this.abort = new AbortController();
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    let gotEvent = false;
    try {
      const response = await this.env.fetch(this.env.streamUrl ?? '/api/library-version-events', { headers, credentials: 'same-origin', signal: this.abort.signal, cache: 'no-store' });
      if (response.status === 401) return this.authLost();
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          if (event.event === 'auth') return this.authLost();
          if (event.event !== 'version') continue;
          if (!gotEvent) {
            gotEvent = true;
            this.attempt = 0;
            this.failuresWithoutEvent = 0;
            this.setStreaming(true);
          }
          if (event.id) this.lastEventId = event.id;
          this.listener.version(JSON.parse(event.data) as CachedVersion);
        }
        if (parser.retryMs !== undefined) this.retryHintMs = parser.retryMs;
      }
    } catch {
      // Network error, abort, or a bad answer: the caller schedules the reconnect.
    } finally {
      this.setStreaming(false);
    }
    if (!gotEvent) this.failuresWithoutEvent++;
  }

  private authLost(): void {
    this.stop();
    this.listener.authLost();
  }

  private setStreaming(streaming: boolean): void {
    if (this.streaming === streaming) return;
    this.streaming = streaming;
    this.report();
  }

  private report(): void {
    this.listener.connection({ streaming: this.streaming, polling: this.polling });
  }
}
