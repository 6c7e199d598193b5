// npx tsx bench/idle-cost.ts [--pieces=1000] [--size=150]
//
// The control for `bench/cpu-per-grant.ts --gaps`: a fixed piece of plain JavaScript (JSON round
// trips of `--size` small objects, about half a millisecond, no I/O, none of the service's code),
// done back to back and then with a pause of 5 and 20 ms after each, twice, CPU time per piece.
// If a piece costs more after a pause here too, what a request costs more when it arrives alone is
// the machine's (caches and the virtual CPU coming back from idle), not the service's code. Run it
// under `taskset -c 1` to keep other processes off its core.
import { setTimeout as sleep } from 'node:timers/promises';
import { numberArg } from './args.js';

const pieces = numberArg('pieces', 1_000);
const size = numberArg('size', 150);

const data = Array.from({ length: size }, (_, i) => ({ id: i, name: `lease-${i}`, tags: { a: i % 7, b: [i, i + 1] } }));
const piece = () => {
  let length = 0;
  for (let k = 0; k < 3; k++) length += JSON.stringify(JSON.parse(JSON.stringify(data))).length;
  return length;
};
// The JIT has optimized the piece before anything is timed.
for (let i = 0; i < 300; i++) piece();

for (const round of [1, 2]) {
  for (const gapMs of [0, 5, 20]) {
    // Without a pause, the piece still ends its turn of the event loop, as a request does.
    const pause = () => (gapMs > 0 ? sleep(gapMs) : new Promise((resolve) => setImmediate(resolve)));
    const before = process.cpuUsage();
    for (let i = 0; i < pieces; i++) {
      piece();
      await pause();
    }
    const used = process.cpuUsage(before);
    const per = (micros: number) => (micros / 1_000 / pieces).toFixed(3);
    console.log(
      `${`${gapMs} ms apart, round ${round}`.padEnd(24)} ${per(used.user + used.system)} ms CPU per piece (${per(used.user)} user)`,
    );
  }
}
