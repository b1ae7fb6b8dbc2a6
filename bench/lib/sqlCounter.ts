import net from 'node:net';

/**
 * A counting TCP proxy in front of PostgreSQL: it forwards bytes both ways untouched and counts the
 * statements clients execute (simple-protocol Query 'Q' and extended-protocol Execute 'E' messages), so a
 * server pointed at it reveals how many SQL statements a request costs — without changing the server.
 */
export interface SqlCounter {
  /** `DATABASE_URL` for a server that should be counted. */
  url: string;
  statements(): number;
  close(): Promise<void>;
}

const STARTUP_PROTOCOL = 196608; // 3.0
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Counts statements in a client→server byte stream; exported for its unit test. */
export class FrontendParser {
  count = 0;
  private started = false;
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (!this.started) {
        // Untyped messages until the startup packet: int32 length, int32 code.
        if (this.buffer.length < 8) return;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) return;
        const code = this.buffer.readInt32BE(4);
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) this.started = code === STARTUP_PROTOCOL || this.started;
        this.buffer = this.buffer.subarray(length);
        continue;
      }
      if (this.buffer.length < 5) return;
      const type = String.fromCharCode(this.buffer[0]);
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      if (type === 'Q' || type === 'E') this.count++;
      this.buffer = this.buffer.subarray(1 + length);
    }
  }
}

export async function startSqlCounter(databaseUrl: string): Promise<SqlCounter> {
  const target = new URL(databaseUrl);
  const parsers = new Set<FrontendParser>();
  let closedCount = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const parser = new FrontendParser();
    parsers.add(parser);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => {
      parser.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = () => {
      if (parsers.delete(parser)) closedCount += parser.count;
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    statements: () => closedCount + [...parsers].reduce((n, p) => n + p.count, 0),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
