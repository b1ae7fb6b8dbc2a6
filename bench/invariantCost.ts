/**
 * What checking the FHIRPath invariants (src/fhir/invariants.ts) costs per resource, in CPU, on the Synthea
 * samples of both versions: every resource of `synthea-r4` and `synthea-stu3` (beside the checkout), parsed as
 * the server parses them, checked once to compile each type's rules, then `rounds` times measured. Prints the
 * CPU per resource (user + system, this process alone) and the resources with a violation.
 *
 *   node scripts/run-ts.js bench/invariantCost.ts [rounds]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { invariantViolations } from '../src/fhir/invariants';
import { parseFhirJson } from '../src/fhir/losslessJson';
import type { FhirVersion } from '../src/fhir/types';
import { ROOT } from './lib/server';

type Typed = Record<string, unknown> & { resourceType: string };

function sample(folder: string): Typed[] {
  const dir = [path.resolve(ROOT, '../shared/data', folder), path.resolve(ROOT, '../../shared/data', folder)].find((d) => existsSync(d));
  if (!dir) throw new Error(`${folder} not found beside the checkout`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((f) => (parseFhirJson(readFileSync(path.join(dir, f), 'utf8')) as { entry: { resource: Typed }[] }).entry.map((e) => e.resource));
}

function measure(version: FhirVersion, resources: Typed[], rounds: number): void {
  const broken = new Map<string, number>();
  for (const r of resources) for (const v of invariantViolations(version, r)) broken.set(`${v.path}: ${v.key}`, (broken.get(`${v.path}: ${v.key}`) ?? 0) + 1);
  const before = process.cpuUsage();
  for (let i = 0; i < rounds; i++) for (const r of resources) invariantViolations(version, r);
  const used = process.cpuUsage(before);
  const perResource = (used.user + used.system) / (rounds * resources.length);
  console.log(`${version}: ${resources.length} resources × ${rounds}: ${perResource.toFixed(1)} µs CPU per resource`);
  for (const [rule, n] of [...broken].sort()) console.log(`  ${n} × ${rule}`);
}

const rounds = Number(process.argv[2] ?? 3);
measure('R4', sample('synthea-r4'), rounds);
measure('STU3', sample('synthea-stu3'), rounds);
