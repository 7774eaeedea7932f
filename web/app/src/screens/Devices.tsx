/** The learner's signed-in devices; revoking one signs it out (its live updates stop at once). */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { describeError, request } from '@shelf/sdk';
import { client } from '../session';
import { useSync } from '../sync/LibraryVersionSyncProvider';
import { devicesQuery, libraryKeys } from '../sync/queries';

export function Devices() {
  const { session } = useSync();
  const queryClient = useQueryClient();
  const devices = useQuery(devicesQuery(session.userId));
  const revoke = useMutation({
    mutationFn: (deviceId: string) => request(client.DELETE('/api/devices/{deviceId}', { params: { path: { deviceId } } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: libraryKeys.devices(session.userId) }),
  });

  return (
    <main className="devices">
      <h1>Devices</h1>
      <p className="hint">Everywhere you are signed in. Sign out a device you no longer use.</p>
      {devices.isPending && <p>Loading…</p>}
      {devices.isError && <p className="field-error" role="alert">{describeError(devices.error)}</p>}
      <ul className="device-list">
        {devices.data?.map((device) => (
          <li key={device.deviceId}>
            <div>
              <strong>{device.deviceName}</strong>
              {device.current && <span className="badge">This device</span>}
              <span className="hint">Last active {new Date(device.lastSeenAt).toLocaleString()}</span>
            </div>
            {!device.current && (
              <button type="button" className="secondary" disabled={revoke.isPending} onClick={() => revoke.mutate(device.deviceId)} aria-label={`Sign out ${device.deviceName}`}>
                Sign out
              </button>
            )}
          </li>
        ))}
      </ul>
      {revoke.isError && <p className="field-error" role="alert">Could not sign that device out: {describeError(revoke.error)}</p>}
    </main>
  );
}
