import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VersionFollower } from '../src/follower';
import { SseParser } from '../src/sse';
import { STREAM_FAILURES_BEFORE_POLLING } from '../src/backoff';

function sseResponse(text: string): Response {
  return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

describe('SSE parser', () => {
  it('reads events, ids, retry hints and comments across chunk boundaries', () => {
    const parser = new SseParser();
    expect(parser.push('retry: 2500\nid: 4\nevent: version\ndata: {"libraryVer')).toEqual([]);
    expect(parser.push('sion":4,"epoch":"e"}\n\n: heartbeat\n\n')).toEqual([{ event: 'version', id: '4', data: '{"libraryVersion":4,"epoch":"e"}' }]);
    expect(parser.retryMs).toBe(2500);
  });
});

describe('version follower', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup(fetchImpl: (url: string, init: RequestInit) => Promise<Response>, poll = vi.fn(async () => ({ libraryVersion: 9, epoch: 'e' }))) {
    const versions: number[] = [];
    const connections: { streaming: boolean; polling: boolean }[] = [];
    const authLost = vi.fn();
    const fetchMock = vi.fn(fetchImpl);
    const follower = new VersionFollower(
      { fetch: fetchMock as unknown as typeof fetch, poll, isOnline: () => true, isVisible: () => true, random: () => 0.5 },
      { version: (v) => versions.push(v.libraryVersion), connection: (c) => connections.push(c), authLost },
    );
    return { follower, versions, connections, authLost, fetchMock, poll };
  }

  it('reconnects with Last-Event-ID after the stream ends', async () => {
    const { follower, versions, fetchMock } = setup(async () => sseResponse('retry: 1000\nid: 3\nevent: version\ndata: {"libraryVersion":3,"epoch":"e"}\n\n'));
    follower.start();
    await vi.advanceTimersByTimeAsync(1_100);
    follower.stop();
    expect(versions.slice(0, 2)).toEqual([3, 3]);
    expect((fetchMock.mock.calls[1]![1].headers as Record<string, string>)['Last-Event-ID']).toBe('3');
  });

  it('falls back to polling after repeated stream failures, then tries the stream again', async () => {
    const { follower, versions, fetchMock, poll, connections } = setup(async () => new Response('buffered', { status: 502 }));
    follower.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetchMock).toHaveBeenCalledTimes(STREAM_FAILURES_BEFORE_POLLING);
    expect(poll).toHaveBeenCalled();
    expect(versions[0]).toBe(9);
    expect(connections.at(-1)).toEqual({ streaming: false, polling: true });
    const polls = poll.mock.calls.length;
    await vi.advanceTimersByTimeAsync(15_000);
    expect(poll.mock.calls.length).toBe(polls + 1);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(fetchMock.mock.calls.length).toBeGreaterThan(STREAM_FAILURES_BEFORE_POLLING);
    follower.stop();
  });

  it('stops and reports when the session ended', async () => {
    const { follower, authLost, fetchMock } = setup(async () => new Response('{}', { status: 401 }));
    follower.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(authLost).toHaveBeenCalledOnce();
    expect(fetchMock).toHaveBeenCalledOnce();
  });
});
