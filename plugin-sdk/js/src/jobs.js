/**
 * @file The job queue of a plugin call, for the component only.
 *
 * QuickJS runs promise reactions from a job queue that componentize-qjs's
 * synchronous exports never run, so a native Promise cannot settle during a
 * call. The build lowers `async`/`await` to generators over the global
 * `Promise` (esbuild), and the entry module imports this module first: it
 * makes `Promise` the A+ implementation of `promise-polyfill`, whose
 * reactions go to a queue of ours, and gives `queueMicrotask` the same
 * queue. {@link drain} runs the queue empty; the runtime facade calls it
 * after a stage function returns a promise, then reads how it settled.
 *
 * There are no timers: a plugin call has a deadline of milliseconds, and a
 * promise that waits for time (or for anything but other promises and the
 * host's synchronous calls) never settles. The facade reports that.
 */

import PromisePolyfill from "promise-polyfill";

/** Jobs waiting to run, oldest first, from `next` on. */
const queue = [];
let next = 0;

const enqueue = (job) => {
  queue.push(job);
};

PromisePolyfill._immediateFn = enqueue;
// A rejection nobody handles is reported by how the stage's promise settles,
// or not at all, as in Node with a handler that ignores it.
PromisePolyfill._unhandledRejectionFn = () => {};

globalThis.Promise = PromisePolyfill;
globalThis.queueMicrotask = (job) => {
  if (typeof job !== "function") throw new TypeError("queueMicrotask: the argument must be a function");
  enqueue(job);
};

/**
 * Runs queued jobs, and the jobs they queue, until none is left. A job that
 * throws (only `queueMicrotask` callbacks can: promise reactions catch) stops
 * the drain with its error, as an uncaught exception would.
 */
export function drain() {
  try {
    while (next < queue.length) {
      const job = queue[next];
      queue[next] = undefined;
      next += 1;
      job();
    }
  } finally {
    if (next >= queue.length) {
      queue.length = 0;
      next = 0;
    }
  }
}
