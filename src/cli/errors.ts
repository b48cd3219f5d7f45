/**
 * A mistake the user can fix (bad flag, missing file, malformed input). The CLI prints its
 * message without a stack trace and exits with `exitCode` (2 by default).
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}
