/** @shelf/sdk — Shelf's sync engine for browsers. No React; `web/app` adapts it. */
export { createShelfClient, request, errorFromBody, ShelfApiError, type ShelfClient, type Schemas } from './api/client';
export { SyncEngine, describeError, type EngineState, type EngineChange, type EngineOptions } from './engine';
export { getLatestCachedVersion, shouldRefreshCache, updateCachedVersion, readLocalVersion, forgetCachedVersion, type VersionStores } from './version-manager';
export { fullJitterDelay, pollingDelay, POLL_HIDDEN_MS, POLL_VISIBLE_MS } from './backoff';
export { LeaderElection } from './leader';
export { VersionFollower } from './follower';
export { SseParser } from './sse';
export { searchItems, sortForList } from './view';
export { databaseName } from './replica';
export {
  disablePush,
  enablePush,
  pushNotificationText,
  pushOptedIn,
  pushSupport,
  pushUser,
  recordPushedVersion,
  rememberPushUser,
  subscribePush,
  PERIODIC_SYNC_TAG,
  PUSH_TAG,
  PUSHED_VERSION_KEY,
  type PushRecord,
  type PushSupport,
} from './push';
export { markOpened, warmAttachments, attachmentUrl, ATTACHMENT_CACHE } from './warm';
export * from './types';
