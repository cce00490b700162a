/**
 * The package entry's `startAdminServer`: a thin wrapper that loads the admin server's module only
 * when a server is started, so that importing the engine does not load the HTTP server or the metrics
 * code (and prom-client with it) for applications that never serve metrics.
 */
import type { AdminServer, AdminServerOptions } from './admin/admin-server.js';

export type { AdminServer, AdminServerOptions };

/** Starts an admin server (/metrics, /health, /ready) not yet bound to a database. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const admin = await import('./admin/admin-server.js');
  return admin.startAdminServer(options);
}
