/** Domain types of the sync engine, derived from the generated API schema (never retyped). */
import type { Schemas } from './api/client';

export type MaterialFields = Schemas['MaterialFields'];
export type ProgressView = Schemas['ProgressView'];
export type AttachmentView = Schemas['AttachmentView'];
export type ConflictView = Schemas['ConflictView'];
export type ConflictSummaryView = Schemas['ConflictSummaryView'];
export type ChangeView = Schemas['ChangeView'];
export type MutationResultView = Schemas['MutationResultView'];
export type DeviceView = Schemas['DeviceView'];
export type ProgressInput = Schemas['ProgressInput'];

/** What a screen shows: the replica with the outbox applied on top. */
export interface MaterialItem extends MaterialFields {
  progress: ProgressView | null;
  attachments: AttachmentView[];
  /** Local edits of this material not yet confirmed by the server. */
  pending: boolean;
}

/** One queued edit as the server takes it: a union tagged by `type` (generated). */
export type MutationInput = Schemas['MutationInput'];
export type MutationType = MutationInput['type'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An edit before it gets its mutation id (see `outbox.ts`). */
export type NewMutation = DistributiveOmit<MutationInput, 'mutationId'> & { baseVersion: number };

/** An edit in the outbox; `mutationId` is unique per device. */
export type OutboxEntry = MutationInput & {
  /** `inflight` once sent: it stays until a receipt answers for it, across reloads. */
  state: 'queued' | 'inflight';
  createdAt: number;
};

/** An edit the server did not apply as made; shown to the learner until dismissed. */
export interface SyncProblem {
  key: string;
  kind: 'rejected' | 'lost';
  materialId?: string;
  title: string;
  message: string;
  createdAt: number;
}

/** The cached version pair of the product documents. */
export interface CachedVersion {
  libraryVersion: number;
  epoch: string;
}

export type SyncStatus = 'synced' | 'syncing' | 'offline' | 'error';
