import net from 'node:net';
import type { ISocketFactory } from 'kafkajs';

/** Kafka API key of Heartbeat (kafkajs 2.2.4 speaks versions 0 to 3, none of them flexible). */
const HEARTBEAT = 12;

/** Broker error codes a test can answer with (see kafkajs `src/protocol/error.js`). */
export const BrokerErrorCode = {
  /** Not retriable: the group's ACL no longer lets this client in. */
  GROUP_AUTHORIZATION_FAILED: 30,
} as const;

/**
 * A kafkajs `socketFactory` through which the broker refuses a request the way a real broker
 * does, with an error code in its response: `refuseNextHeartbeat(code)` rewrites the error code of
 * the response to the next Heartbeat any connection sends. The request still reaches the broker;
 * only the answer kafkajs decodes changes. Frames pass on whole, one `data` event each.
 */
export class BrokerRefusal {
  private heartbeatCode: number | undefined;
  /** Responses rewritten so far. */
  refused = 0;

  refuseNextHeartbeat(errorCode: number): void {
    this.heartbeatCode = errorCode;
  }

  readonly socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = net.connect({ host, port }, onConnect);
    /** Correlation id of a refused request -> offset of the error code after the response header. */
    const refusing = new Map<number, { code: number; at: number }>();

    // kafkajs writes each request whole: size, API key, API version, correlation id, ...
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.heartbeatCode !== undefined && Buffer.isBuffer(chunk) && chunk.readInt16BE(4) === HEARTBEAT) {
        const version = chunk.readInt16BE(6);
        if (version > 3) throw new Error(`BrokerRefusal knows Heartbeat versions 0 to 3, kafkajs sent version ${version}`);
        // Versions 1 to 3 put throttle_time_ms before error_code.
        refusing.set(chunk.readInt32BE(8), { code: this.heartbeatCode, at: version >= 1 ? 4 : 0 });
        this.heartbeatCode = undefined;
      }
      return write(chunk, ...rest);
    }) as typeof socket.write;

    // Responses: size, correlation id, body. Cut the stream into frames to find the refused one.
    let pending = Buffer.alloc(0);
    const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
    socket.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event !== 'data') return emit(event, ...args);
      pending = Buffer.concat([pending, args[0] as Buffer]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = Buffer.from(pending.subarray(0, 4 + pending.readInt32BE(0)));
        pending = pending.subarray(frame.length);
        const refusal = refusing.get(frame.readInt32BE(4));
        if (refusal) {
          refusing.delete(frame.readInt32BE(4));
          frame.writeInt16BE(refusal.code, 8 + refusal.at);
          this.refused++;
        }
        emit('data', frame);
      }
      return true;
    }) as typeof socket.emit;
    return socket;
  };
}
