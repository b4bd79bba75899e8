// graphile-worker's performance preset, as its "Performance" page gives it: each process runs
// 24 jobs at once, fetches up to 500 jobs per statement into a local queue, and completes
// finished jobs in batches with no added delay.
module.exports = {
  worker: {
    connectionString: process.env.TRAWL_PEER_DATABASE_URL,
    fileExtensions: [".js"],
    concurrentJobs: 24,
    maxPoolSize: 25,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};
