import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SqlClient } from '../store/sql';

/**
 * Registration invitations (DESIGN §2: "an email may trigger a registration invitation, sent through a
 * pluggable mailer; recorded, never lost"). The invitation is queued in `native_invitation` in the same
 * transaction as the demographics it comes from (one row per patient and address, so a retried message queues
 * nothing new); after the commit the outbox hands unsent ones to the `Mailer` and marks each sent once it has
 * been delivered. A mailer that fails leaves the row unsent for the next flush (at the next change, and at
 * start).
 */
export interface Invitation {
  id: string;
  organizationId: string;
  organizationName: string;
  patientId: string;
  email: string;
  givenName: string;
  family: string;
}

export interface Mailer {
  /** Delivers one invitation; must be safe to call again for the same id (it may be, after a crash). */
  deliver(invitation: Invitation): Promise<void>;
}

/** The default mailer: one RFC 5322 message per invitation under `$DATA_DIR/mail/`, named by its id. */
export class FileMailer implements Mailer {
  constructor(private readonly dir: string) {}

  async deliver(invitation: Invitation): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${invitation.id}.eml`);
    const message = [
      `To: ${invitation.email}`,
      `Subject: ${invitation.organizationName} invites you to your health record`,
      `X-Tributary-Invitation: ${invitation.id}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Dear ${invitation.givenName} ${invitation.family},`,
      '',
      `${invitation.organizationName} has added you to its records. Register to see your health record online.`,
      '',
    ].join('\r\n');
    // Written whole or not at all: a reader never sees half a message.
    await writeFile(`${file}.tmp`, message, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
}

export class InvitationOutbox {
  private running: Promise<number> | undefined;
  /** A flush asked for while one runs: its invitations may have committed after that one looked. */
  private again = false;

  constructor(
    private readonly sql: SqlClient,
    private readonly mailer: Mailer,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Delivers every unsent invitation; returns how many were sent. One flush at a time per process. */
  flush(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<number> => {
      let sent = 0;
      do {
        this.again = false;
        sent += await this.deliverAll();
      } while (this.again);
      return sent;
    };
    this.running = run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async deliverAll(): Promise<number> {
    const rows = await this.sql.query<{ id: string; organization_id: string; organization_name: string; patient_id: string; email: string; given: string[]; family: string }[]>(
      `SELECT i.id, i.organization_id, o.name AS organization_name, i.patient_id, i.email, p.given, p.family
         FROM native_invitation i JOIN native_patient p ON p.id = i.patient_id JOIN organization o ON o.id = i.organization_id
        WHERE i.sent_at IS NULL ORDER BY i.created_at LIMIT 100`,
    );
    let sent = 0;
    for (const r of rows) {
      try {
        await this.mailer.deliver({
          id: r.id,
          organizationId: r.organization_id,
          organizationName: r.organization_name,
          patientId: r.patient_id,
          email: r.email,
          givenName: r.given[0] ?? '',
          family: r.family,
        });
        // Another process may have delivered it meanwhile: only the first marks it.
        sent += await this.sql.execute(`UPDATE native_invitation SET sent_at = CURRENT_TIMESTAMP WHERE id = $1 AND sent_at IS NULL`, r.id);
      } catch (err) {
        this.onError(err);
      }
    }
    return sent;
  }
}
