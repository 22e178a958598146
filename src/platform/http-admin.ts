// Serves a fetch handler (a hono app) over node:http, for a member's admin port.
//
// node:http does the edge checks: a request line or headers that do not parse, or headers
// larger than headerBytesMax, get a 400/431 and the connection is closed ('clientError',
// logged here); nothing a client sends reaches the handler unparsed or crashes the process.
// With `tls` it is node:https with the member certificate (client certificates required
// with clientCertAuth; tls.ts).

import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { assert } from '../stdx/assert.js';
import type { MemberTls } from './tls.js';

export interface HttpLogger {
  warn(fields: object, message: string): void;
}

export interface HttpLimits {
  readonly headerBytesMax: number;
  readonly connectionsMax: number;
  /** A request must arrive completely within this time. */
  readonly requestTimeoutMs: number;
}

export const httpDefaults: HttpLimits = {
  headerBytesMax: 16 * 1024,
  connectionsMax: 256,
  requestTimeoutMs: 10_000,
};

export interface HttpAdminOptions {
  readonly host: string;
  readonly port: number;
  readonly fetch: (request: Request) => Response | Promise<Response>;
  readonly logger: HttpLogger;
  readonly limits?: Partial<HttpLimits>;
  /** Serve https with the member certificate. */
  readonly tls?: MemberTls;
}

export class HttpAdminServer {
  private constructor(private readonly server: Server) {}

  /** Listens (port 0 picks a free port). */
  static start(options: HttpAdminOptions): Promise<HttpAdminServer> {
    const limits = { ...httpDefaults, ...options.limits };
    const tls = options.tls;
    const httpOptions = { maxHeaderSize: limits.headerBytesMax, requestTimeout: limits.requestTimeoutMs };
    const server = createAdaptorServer({
      fetch: options.fetch,
      createServer: tls === undefined ? createServer : createHttpsServer,
      serverOptions: tls === undefined ? httpOptions : { ...httpOptions, ...tls.serverOptions('admin') },
    }) as Server;
    tls?.secure(server as unknown as HttpsServer, 'admin', options.logger);
    server.maxConnections = limits.connectionsMax;
    server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
      options.logger.warn({ port: 'admin', remote: socket.remoteAddress, reason: error.code ?? error.message }, 'closed an admin connection: malformed or oversized HTTP request');
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve(new HttpAdminServer(server));
      });
    });
  }

  address(): { host: string; port: number } {
    const address = this.server.address();
    assert(address !== null && typeof address === 'object', 'listening');
    return { host: address.address, port: address.port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
