import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './config/config.js';

export type { Logger };

/**
 * Pretty lines on a terminal, JSON lines everywhere else (files, containers, CI). Every line
 * carries this process's `pid` and `hostname`; pino does not merge keys, so another process's
 * id must be logged under another name (`postgresPid`), or the line holds `pid` twice.
 */
export function createLogger(
  options: { level: string; format: LogFormat; name?: string },
  /** Where JSON lines go instead of stdout (tests capture them); ignored when pretty. */
  destination?: DestinationStream,
): Logger {
  const pretty = options.format === 'pretty' || (options.format === 'auto' && process.stdout.isTTY === true);
  const settings: pino.LoggerOptions = {
    level: options.level,
    name: options.name,
    // Provider tokens and API keys must never reach a log line, whoever logs the object.
    redact: {
      paths: [
        'secret',
        '*.authorization',
        '*.secret',
        '*.token',
        '*.secret_ciphertext',
        'headers.authorization',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
    transport: pretty
      ? { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } }
      : undefined,
  };
  return pretty || !destination ? pino(settings) : pino(settings, destination);
}
