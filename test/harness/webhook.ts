// A local HTTP receiver for the alert webhook: it keeps every request (path,
// headers, raw body and the parsed alert) and answers 204.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert } from '../../lib/alerts';

export interface ReceivedAlert {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  alert: Alert;
}

export interface AlertReceiver {
  received: ReceivedAlert[];
  /** The parsed alerts so far, oldest first. */
  alerts(): Alert[];
  /** The webhook URL to configure (alerts.webhookUrl). */
  url: string;
  close(): Promise<void>;
}

/** A receiver on a free local port; `pathAndQuery` is what the URL ends with. */
export async function alertReceiver(pathAndQuery = '/hook'): Promise<AlertReceiver> {
  const received: ReceivedAlert[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, raw, alert: JSON.parse(raw) as Alert });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    received,
    alerts: () => received.map((r) => r.alert),
    url: `http://127.0.0.1:${port}${pathAndQuery}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
