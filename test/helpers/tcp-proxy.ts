import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's (and no Unix socket `host` parameter). */
  through(url: string): string;
  /**
   * Stop forwarding without closing anything, like a network that silently drops packets: every
   * connection open now stays open and silent for good (half-open), and so do connections
   * accepted while frozen.
   */
  freeze(): void;
  /** New connections flow again; those stalled by a freeze stay stalled. */
  thaw(): void;
  close(): Promise<void>;
}

/** A TCP proxy on loopback in front of `target`, with real sockets. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const flowing = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let frozen = false;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const stall = (socket: net.Socket) => socket.pause();

  const server = net.createServer((client) => {
    track(client);
    if (frozen) return stall(client);
    const upstream = net.connect(target.port, target.host);
    track(upstream);
    const pair = { client, upstream };
    flowing.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      flowing.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    through(url) {
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(port);
      proxied.searchParams.delete('host');
      return proxied.toString();
    },
    freeze() {
      frozen = true;
      for (const { client, upstream } of flowing) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        stall(client);
        stall(upstream);
      }
      flowing.clear();
    },
    thaw() {
      frozen = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
