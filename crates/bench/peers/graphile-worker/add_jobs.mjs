// Creates graphile-worker's schema in the bench database and queues TRAWL_PEER_JOBS no-op
// jobs through its own addJobs, 10,000 per call (before the clock starts, as trawl's runs are
// submitted before its workers start).
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const entry = pathToFileURL(join(process.env.TRAWL_GRAPHILE_WORKER, "dist/index.js")).href;
const { makeWorkerUtils } = await import(entry);
const utils = await makeWorkerUtils({ connectionString: process.env.TRAWL_PEER_DATABASE_URL });
try {
  await utils.migrate();
  const jobs = Number(process.env.TRAWL_PEER_JOBS);
  for (let from = 0; from < jobs; from += 10000) {
    const specs = [];
    for (let i = from; i < Math.min(jobs, from + 10000); i++) {
      specs.push({ identifier: "noop", payload: { i } });
    }
    await utils.addJobs(specs);
  }
} finally {
  await utils.release();
}
