import { generateSecret, hashSecret, verifySecret } from '../../src/access/secrets';

describe('client secrets', () => {
  test('a generated secret is 256 bits of base64url, different every time', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateSecret()).not.toBe(a);
  });

  test('the stored hash is salted scrypt and does not contain the secret', async () => {
    const secret = generateSecret();
    const [h1, h2] = await Promise.all([hashSecret(secret), hashSecret(secret)]);
    expect(h1).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(h1).not.toContain(secret);
    expect(h1).not.toBe(h2);
  });

  test('verify accepts the secret and refuses anything else', async () => {
    const secret = generateSecret();
    const hash = await hashSecret(secret);
    expect(await verifySecret(secret, hash)).toBe(true);
    expect(await verifySecret(`${secret}x`, hash)).toBe(false);
    expect(await verifySecret('', hash)).toBe(false);
  });

  test('a malformed or tampered stored hash verifies nothing rather than throwing', async () => {
    const secret = generateSecret();
    const hash = await hashSecret(secret);
    expect(await verifySecret(secret, 'plain-text')).toBe(false);
    expect(await verifySecret(secret, hash.replace('$16384$', '$99999999$'))).toBe(false);
    expect(await verifySecret(secret, hash.replace('$16384$', '$8192$'))).toBe(false);
  });
});
