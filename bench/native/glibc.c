/*
 * The native C baseline for the benchmarks: glibc's malloc called from C, with no FFI crossing.
 * bench/native.ts compiles it when a C compiler is present; it is never built by install, tests
 * or the package.
 *
 *   glibc pair SIZE PAIRS ROUNDS   median nanoseconds of one malloc(SIZE)+free pair over ROUNDS
 *                                  rounds of PAIRS pairs, after one untimed round
 *   glibc replay FILE REPEAT [WARMUP_MS]
 *                                  replays a malloc-lab trace (plain text) as the replay tool does:
 *                                  untimed passes first (at least 2, 100,000 requests and WARMUP_MS
 *                                  milliseconds), then REPEAT timed passes; prints the best pass in
 *                                  seconds
 *
 * Output is one JSON object on standard output.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The pointer escapes through this, so the compiler cannot drop a pair. */
static void *volatile sink;

static double pair_round(size_t size, long pairs) {
    double t0 = now_ns();
    for (long i = 0; i < pairs; i++) {
        void *p = malloc(size);
        sink = p;
        free(p);
    }
    return (now_ns() - t0) / (double)pairs;
}

static int pair(size_t size, long pairs, int rounds) {
    double *ns = calloc((size_t)rounds, sizeof *ns);
    if (ns == NULL) return 1;
    pair_round(size, pairs);
    for (int r = 0; r < rounds; r++) ns[r] = pair_round(size, pairs);
    qsort(ns, (size_t)rounds, sizeof *ns, by_value);
    printf("{\"size\":%zu,\"medianNs\":%.3f,\"minNs\":%.3f,\"maxNs\":%.3f}\n", size, ns[rounds / 2], ns[0], ns[rounds - 1]);
    free(ns);
    return 0;
}

struct trace {
    long ops, ids;
    unsigned char *kinds;
    uint32_t *id;
    size_t *bytes;
};

static int read_trace(const char *path, struct trace *t) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 1;
    double heap, weight;
    if (fscanf(f, "%lf %ld %ld %lf", &heap, &t->ids, &t->ops, &weight) != 4 || t->ops < 0 || t->ids < 0) goto bad;
    t->kinds = malloc((size_t)t->ops + 1);
    t->id = malloc(((size_t)t->ops + 1) * sizeof *t->id);
    t->bytes = malloc(((size_t)t->ops + 1) * sizeof *t->bytes);
    if (t->kinds == NULL || t->id == NULL || t->bytes == NULL) goto bad;
    for (long i = 0; i < t->ops; i++) {
        char kind;
        unsigned long id, bytes = 0;
        if (fscanf(f, " %c %lu", &kind, &id) != 2 || id >= (unsigned long)t->ids) goto bad;
        if (kind != 'f' && fscanf(f, "%lu", &bytes) != 1) goto bad;
        t->kinds[i] = kind == 'a' ? 0 : kind == 'r' ? 1 : 2;
        t->id[i] = (uint32_t)id;
        t->bytes[i] = bytes;
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    return 1;
}

static double replay_pass(const struct trace *t, void **addr) {
    double t0 = now_ns();
    for (long i = 0; i < t->ops; i++) {
        uint32_t id = t->id[i];
        switch (t->kinds[i]) {
        case 0: addr[id] = malloc(t->bytes[i]); break;
        case 1: addr[id] = realloc(addr[id], t->bytes[i]); break;
        default: free(addr[id]); addr[id] = NULL; break;
        }
    }
    return now_ns() - t0;
}

static int replay(const char *path, int repeat, double warmup_ms) {
    struct trace t;
    if (read_trace(path, &t) != 0) {
        fprintf(stderr, "glibc: cannot read the trace %s\n", path);
        return 1;
    }
    void **addr = calloc((size_t)t.ids + 1, sizeof *addr);
    if (addr == NULL) return 1;
    long warmups = t.ops > 0 ? (100000 + t.ops - 1) / t.ops : 2;
    if (warmups < 2) warmups = 2;
    double until = now_ns() + warmup_ms * 1e6;
    for (long r = 0; r < warmups || now_ns() < until; r++) replay_pass(&t, addr);
    double best = 1e300;
    for (int r = 0; r < repeat; r++) {
        double ns = replay_pass(&t, addr);
        if (ns < best) best = ns;
    }
    printf("{\"ops\":%ld,\"seconds\":%.9f}\n", t.ops, best / 1e9);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "pair") == 0) return pair((size_t)atol(argv[2]), atol(argv[3]), atoi(argv[4]));
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "replay") == 0) return replay(argv[2], atoi(argv[3]), argc == 5 ? atof(argv[4]) : 0);
    fprintf(stderr, "usage: glibc pair SIZE PAIRS ROUNDS | glibc replay FILE REPEAT [WARMUP_MS]\n");
    return 2;
}
