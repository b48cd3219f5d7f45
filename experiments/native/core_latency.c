// Where the two CPUs of a VM share their caches (issue 15): a dependent pointer chase over a buffer
// of MB megabytes (one pointer per 64-byte line, random cyclic order) after one CPU has written every
// line (so the lines sit dirty in that CPU's caches), timed on the same CPU and on the other one.
// On a shared L3 both read it back at about the same latency; on L3s of their own (the host's cores
// on different CCXs) the other CPU pays a transfer between them. Chasing a buffer far larger than L3
// gives the memory latency for comparison. Threads pinned with pthread_setaffinity_np.
//
// Build and run:
//   gcc -O2 -pthread -o /tmp/core_latency experiments/native/core_latency.c
//   /tmp/core_latency 6      # 6 MB: within one L3
//   /tmp/core_latency 256    # memory
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pin(int c) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(c, &s);
  pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}
static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
typedef struct {
  size_t n;
  size_t* buf;
  int cpu;
  int chase;  // 0: write every line, 1: chase and print
} Job;
static volatile size_t sink;
static void* run(void* p) {
  Job* a = p;
  pin(a->cpu);
  if (!a->chase) {
    for (size_t i = 0; i < a->n; i++) a->buf[i * 8 + 1] += 1;
  } else {
    const double t0 = now_ns();
    size_t j = 0;
    for (size_t i = 0; i < a->n; i++) j = a->buf[j * 8];
    sink += j;
    printf("  chased by cpu%d: %.1f ns a line\n", a->cpu, (now_ns() - t0) / a->n);
  }
  return 0;
}
static void on(int cpu, int chase, size_t n, size_t* buf) {
  Job a = {n, buf, cpu, chase};
  pthread_t t;
  pthread_create(&t, 0, run, &a);
  pthread_join(t, 0);
}
int main(int argc, char** argv) {
  const size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 6;
  const size_t n = mb * 1024 * 1024 / 64;
  size_t* buf = aligned_alloc(2 << 20, n * 64);
  size_t* perm = malloc(n * sizeof(size_t));
  if (!buf || !perm) return 1;
  memset(buf, 0, n * 64);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  srand(1);
  for (size_t i = n - 1; i > 0; i--) {
    const size_t k = ((size_t)rand() * RAND_MAX + (size_t)rand()) % (i + 1);
    const size_t x = perm[i];
    perm[i] = perm[k];
    perm[k] = x;
  }
  for (size_t i = 0; i < n; i++) buf[perm[i] * 8] = perm[(i + 1) % n];
  for (int round = 0; round < 2; round++)
    for (int w = 0; w < 2; w++)
      for (int c = 0; c < 2; c++) {
        printf("%zu MB written by cpu%d\n", mb, w);
        on(w, 0, n, buf);
        on(c, 1, n, buf);
      }
  free(perm);
  free(buf);
  return 0;
}
