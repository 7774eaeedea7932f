import { describe, expect, it } from 'vitest';
import { fullJitterDelay, pollingDelay, POLL_HIDDEN_MS, POLL_VISIBLE_MS } from '../src/backoff';

describe('full-jitter backoff', () => {
  it('waits uniformly up to base·2^attempt, capped', () => {
    const options = { baseMs: 1_000, capMs: 60_000 };
    expect(fullJitterDelay(0, options, () => 0.999)).toBe(999);
    expect(fullJitterDelay(3, options, () => 0.5)).toBe(4_000);
    expect(fullJitterDelay(20, options, () => 0.999)).toBeLessThan(60_000);
    expect(fullJitterDelay(20, options, () => 0)).toBe(0);
  });

  it('never reconnects sooner than the retry: hint', () => {
    expect(fullJitterDelay(0, { baseMs: 1_000, capMs: 60_000 }, () => 0, 3_000)).toBe(3_000);
    expect(fullJitterDelay(6, { baseMs: 1_000, capMs: 60_000 }, () => 0.9, 3_000)).toBe(54_000);
  });
});

describe('polling interval strategy', () => {
  it('is faster while visible, slower while hidden', () => {
    expect(pollingDelay({ visible: true, online: true }, () => 0.5)).toBe(POLL_VISIBLE_MS);
    expect(pollingDelay({ visible: false, online: true }, () => 0.5)).toBe(POLL_HIDDEN_MS);
  });

  it('is jittered by ±20 %', () => {
    expect(pollingDelay({ visible: true, online: true }, () => 0)).toBe(POLL_VISIBLE_MS * 0.8);
    expect(pollingDelay({ visible: true, online: true }, () => 1)).toBe(POLL_VISIBLE_MS * 1.2);
  });

  it('pauses while offline', () => {
    expect(pollingDelay({ visible: true, online: false })).toBeNull();
  });
});
