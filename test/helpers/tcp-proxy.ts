import net from 'node:net';

/** Which way a stalled proxy stops forwarding: everything, or only the backend's replies. */
export type StallDirection = 'both' | 'replies';

export interface TcpProxy {
  /** the target URL with host and port replaced by the proxy's. */
  url: string;
  /** closes every connection and refuses new ones (the backend "goes away"). */
  pause(): Promise<void>;
  /** accepts connections again on the same port. */
  resume(): Promise<void>;
  /**
   * Stops forwarding without closing anything (a hung link): bytes are held, connections stay
   * open, new connections are accepted and held too. `replies`: requests still reach the backend
   * (so commands run) but no answer comes back.
   */
  stall(direction?: StallDirection): void;
  /** forwards again, including what was held on connections that are still open. */
  heal(): void;
  /** connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/** A TCP proxy in front of a real service, to cut, stall and restore the network in tests. */
export async function startProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port);
  const sockets = new Set<net.Socket>();
  const pairs = new Set<Pair>();
  let stalled: StallDirection | undefined;
  let accepted = 0;

  /** Pipes each direction unless it is stalled; a stalled source is paused, so its bytes wait. */
  const forward = ({ client, upstream }: Pair) => {
    client.unpipe(upstream);
    upstream.unpipe(client);
    if (stalled === 'both') client.pause();
    else client.pipe(upstream);
    if (stalled) upstream.pause();
    else upstream.pipe(client);
  };

  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect({ host: target.hostname, port: targetPort });
    const pair = { client, upstream };
    pairs.add(pair);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    forward(pair);
    client.on('close', () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString().replace(/\/$/, ''),
    pause: stop,
    resume: () => listen(port),
    stall(direction = 'both') {
      stalled = direction;
      for (const p of pairs) forward(p);
    },
    heal() {
      stalled = undefined;
      for (const p of pairs) forward(p);
    },
    accepted: () => accepted,
    close: stop,
  };
}
