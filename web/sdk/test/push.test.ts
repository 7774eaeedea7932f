import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { pushNotificationText, recordPushedVersion, rememberPushUser, PUSHED_VERSION_KEY } from '../src/push';
import { openReplica } from '../src/replica';
import { getLatestCachedVersion } from '../src/version-manager';
import type { CachedVersion } from '../src/types';

async function meta(userId: string, key: string): Promise<unknown> {
  const db = await openReplica(userId, () => {});
  try {
    return await db.get('meta', key);
  } finally {
    db.close();
  }
}

describe('Web Push records (PU4, the Service Worker side)', () => {
  it('records nothing before a user subscribed', async () => {
    await rememberPushUser(null);
    expect(await recordPushedVersion({ libraryVersion: 3, epoch: 'e' })).toBeNull();
  });

  it('keeps the highest pushed version of an epoch, beside (never in) the replica version', async () => {
    const user = `u-${crypto.randomUUID()}`;
    await rememberPushUser(user);
    const db = await openReplica(user, () => {});
    await db.put('meta', { libraryVersion: 4, epoch: 'e' }, 'version');
    db.close();

    const first = await recordPushedVersion({ libraryVersion: 7, epoch: 'e' });
    expect(first).toEqual({ userId: user, pushed: { libraryVersion: 7, epoch: 'e' }, replica: { libraryVersion: 4, epoch: 'e' } });
    expect(pushNotificationText(first!)).toBe('3 changes on another device (version 7)');
    await recordPushedVersion({ libraryVersion: 6, epoch: 'e' }); // late, out of order
    expect(await meta(user, PUSHED_VERSION_KEY)).toEqual({ libraryVersion: 7, epoch: 'e' });
    expect(await meta(user, 'version')).toEqual({ libraryVersion: 4, epoch: 'e' });
    await recordPushedVersion({ libraryVersion: 2, epoch: 'new' }); // the server's database was replaced
    expect(await meta(user, PUSHED_VERSION_KEY)).toEqual({ libraryVersion: 2, epoch: 'new' });
  });

  it('lets the version manager see that the server is ahead', async () => {
    const stores = (replica: CachedVersion | null, pushed: CachedVersion | null) => ({
      readIndexedDb: async () => replica,
      writeIndexedDb: async () => {},
      readPushed: async () => pushed,
    });
    const e = (libraryVersion: number, epoch = 'e') => ({ libraryVersion, epoch });
    expect((await getLatestCachedVersion(stores(e(4), e(7)), 'u')).serverAhead).toEqual(e(7));
    expect((await getLatestCachedVersion(stores(e(7), e(7)), 'u')).serverAhead).toBeNull();
    expect((await getLatestCachedVersion(stores(e(9), e(7)), 'u')).serverAhead).toBeNull();
    expect((await getLatestCachedVersion(stores(e(9), e(2, 'new')), 'u')).serverAhead).toEqual(e(2, 'new'));
    expect((await getLatestCachedVersion(stores(null, null), 'u')).serverAhead).toBeNull();
  });

  it('words the notification without a replica', () => {
    expect(pushNotificationText({ pushed: { libraryVersion: 5, epoch: 'e' }, replica: null })).toBe('Library updated on another device (version 5)');
    expect(pushNotificationText({ pushed: { libraryVersion: 5, epoch: 'e' }, replica: { libraryVersion: 4, epoch: 'e' } })).toBe('1 change on another device (version 5)');
  });
});
