// Operating errors of a MapReduce job (STYLE.md 9): each names what failed and why, in a
// message a user can act on. Programmer errors (AssertionFailure) are never caught as these.

export class MapReduceError extends Error {
  override name = 'MapReduceError';
}

/** An input file could not be read. */
export class InputError extends MapReduceError {
  override name = 'InputError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`cannot read input file "${file}": ${reason}`);
  }
}

/** The application's map, reduce or combine function threw or returned a malformed result. */
export class UserCodeError extends MapReduceError {
  override name = 'UserCodeError';
}

/** An intermediate file is missing or does not decode; its map task must run again. */
export class IntermediateFileError extends MapReduceError {
  override name = 'IntermediateFileError';
}

/** The application module could not be imported or does not export map and reduce. */
export class AppLoadError extends MapReduceError {
  override name = 'AppLoadError';
}

/** The job stopped: a task failed too often, or a worker could not start. */
export class JobFailedError extends MapReduceError {
  override name = 'JobFailedError';
}

/** A short reason from anything thrown, for messages that travel to the coordinator. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.length > 0 ? error.message : error.name;
  return String(error);
}
