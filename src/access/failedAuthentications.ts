import { OAuthError } from './oauthError';

/**
 * Brute-force protection for the token endpoints (issue 16 item 6): failed client authentications are counted
 * per client id and per source address over a sliding window; once either count reaches its limit, further
 * attempts for that client or from that address are refused with 429 and Retry-After until the oldest failure
 * leaves the window, whether or not the credential would be right (else guessing merely slows down). A
 * success clears the client's count. The secret comparison itself stays constant-time (secrets.ts).
 *
 * Counts live in this process: behind several servers each counts its own share, which still bounds the
 * guessing rate by the number of servers.
 */
export interface FailureLimits {
  /** AUTH_MAX_FAILURES_PER_CLIENT: failures of one client id within the window before it is locked out. */
  perClient: number;
  /** AUTH_MAX_FAILURES_PER_ADDRESS: failures from one address (any client ids) before it is locked out. */
  perAddress: number;
  /** AUTH_FAILURE_WINDOW_MS: how long a failure counts. */
  windowMs: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { perClient: 10, perAddress: 50, windowMs: 15 * 60_000 };

/** Keys tracked at most; past it the oldest are forgotten (a flood of made-up client ids cannot exhaust memory). */
const MAX_KEYS = 100_000;

export class FailedAuthentications {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: FailureLimits = DEFAULT_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 429 with Retry-After when the client id or the address is locked out. */
  assertAllowed(clientId: string | undefined, address: string | undefined): void {
    for (const [key, limit, what] of this.keys(clientId, address)) {
      const times = this.recent(key);
      if (times.length >= limit) {
        const retryAfter = Math.max(1, Math.ceil((times[times.length - limit] + this.limits.windowMs - this.now()) / 1000));
        throw new OAuthError('temporarily_unavailable', `Too many failed client authentications ${what}: try again in ${retryAfter} s`, 429, { 'Retry-After': String(retryAfter) });
      }
    }
  }

  failed(clientId: string | undefined, address: string | undefined): void {
    for (const [key] of this.keys(clientId, address)) {
      const times = this.recent(key);
      times.push(this.now());
      this.failures.delete(key);
      this.failures.set(key, times);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeeded(clientId: string): void {
    this.failures.delete(`client:${clientId}`);
  }

  private keys(clientId: string | undefined, address: string | undefined): [string, number, string][] {
    const keys: [string, number, string][] = [];
    if (clientId) keys.push([`client:${clientId}`, this.limits.perClient, 'for this client']);
    if (address) keys.push([`address:${address}`, this.limits.perAddress, 'from this address']);
    return keys;
  }

  /** The failures of `key` still inside the window, oldest first. */
  private recent(key: string): number[] {
    const since = this.now() - this.limits.windowMs;
    const times = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (times.length) this.failures.set(key, times);
    else this.failures.delete(key);
    return times;
  }
}
