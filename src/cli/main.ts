#!/usr/bin/env node
import 'dotenv/config';
import { explainError, type ErrorContext } from './explain-error.js';
import { buildProgram } from './program.js';

/** What the error handler knows about the command that failed, to say which setting is at fault. */
const errorContext: ErrorContext = {};
const program = buildProgram(errorContext);

const wantsStack = () =>
  program.opts().debug === true || ['debug', 'trace'].includes(process.env.LOG_LEVEL?.trim() ?? '');

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`easel: ${explainError(error, errorContext)}\n`);
  if (wantsStack()) {
    for (let cause = error, depth = 0; cause !== undefined && depth < 5; depth++) {
      process.stderr.write(
        `${depth > 0 ? 'caused by: ' : ''}${cause instanceof Error ? cause.stack : String(cause)}\n`,
      );
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
  process.exit(1);
});
