import type { BenchContext } from './context';
import { aggregateScenario } from './aggregate';
import { exportScenario } from './export';
import { graphqlScenario } from './graphql';
import { ingestScenario } from './ingest';
import { liveScenario } from './live';
import { memoryScenario } from './memory';
import { readScenario } from './read';
import { scaleScenario } from './scale';
import { searchScenario } from './search';
import { startScenario } from './start';

/**
 * Every scenario, in the order they run: ingest first (it loads the dataset while the aggregate scenario
 * observes the pipeline), reads, GraphQL, export and live on that dataset (live needs the aggregation worker,
 * which search turns off), search last because it grows the dataset, memory's summary at the end; start
 * measures fresh server processes of its own, and scale runs several servers and workers on a private primary
 * and replica of its own. A new capability adds its scenario here.
 */
export const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<void>> = {
  ingest: ingestScenario,
  aggregate: aggregateScenario,
  read: readScenario,
  graphql: graphqlScenario,
  export: exportScenario,
  live: liveScenario,
  search: searchScenario,
  memory: memoryScenario,
  start: startScenario,
  scale: scaleScenario,
};

export type { BenchContext, Figure } from './context';
