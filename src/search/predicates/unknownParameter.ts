/** A parameter this server does not know or support: ignored in lenient handling, a 400 in strict. */
export class UnknownParameter extends Error {
  constructor(
    readonly parameter: string,
    reason: string,
  ) {
    super(reason);
  }
}
