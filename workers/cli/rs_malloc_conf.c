/*
 * rs_malloc_conf.c — jemalloc's options for the `revstream` program,
 * compiled in (linked only when the program uses jemalloc: see
 * workers/cli/CMakeLists.txt). jemalloc reads `malloc_conf` once, at its
 * first allocation; the MALLOC_CONF environment variable is read after it
 * and overrides any option it names.
 *
 * Why: with jemalloc's defaults (no background thread, dirty pages kept
 * 10 s) the pages a worker batch frees (its records, staged writes and
 * produced copies) stay resident until later allocations happen to purge
 * them, so the peak RSS carried 50–130 MiB of freed memory on top of what
 * was allocated (bench/README.md, "Peak RSS"). A background thread purges
 * dirty pages after DIRTY_DECAY_MS, off the worker's threads, and freed
 * pages go straight back to the kernel instead of through the muzzy state.
 * DIRTY_DECAY_MS 250 (was 1000): a batch frees its staged write and its
 * input at once, and with 1 s of decay the next batches' allocations sat
 * on top of them. 0 took another 50-70 MiB off the backlog peak at
 * 100,000 contracts on 64 partitions, but on a quiet machine it cost the
 * worker 30-40 % more CPU (every freed page returned at once and faulted
 * in again by the next batch: 5.06-5.83 against 3.31-4.04 CPU seconds for
 * the 20,000-contract book); 250 ms costs no more CPU than 1 s and keeps
 * most of the saving (bench/README.md, "jemalloc's decay").
 */
#define DIRTY_DECAY_MS "250"

const char *malloc_conf =
    "background_thread:true,dirty_decay_ms:" DIRTY_DECAY_MS ",muzzy_decay_ms:0";
