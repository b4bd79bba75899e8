// The peer's no-op task: does nothing, and when its process exits prints when that process
// started its first and its last job and how many it ran (trawl-bench reads the line).
const { writeSync } = require("node:fs");

let first = 0;
let last = 0;
let count = 0;

module.exports = async () => {
  const now = performance.timeOrigin + performance.now();
  if (count === 0) first = now;
  last = now;
  count += 1;
};

process.on("exit", () => {
  writeSync(1, `TRAWL_PEER first_ms=${first} last_ms=${last} count=${count}\n`);
});
