/* fuzz_replay.c -- main() for fuzz_alloc.c without libFuzzer: runs the entry
 * point once per file named on the command line, or per file of a named
 * directory (sorted, so the order is reproducible). A failing input aborts
 * with the target's message after "running FILE" names it.
 *
 * Usage: fuzz_replay FILE_OR_DIR...   (exit 0: every input passed) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long inputs;

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  printf("running %s (%zu bytes)\n", path, n);
  fflush(stdout);
  LLVMFuzzerTestOneInput(buf, n);
  inputs++;
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  struct dirent **names;
  int n = scandir(path, &names, NULL, by_name), bad = 0;
  if (n < 0) {
    perror(path);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.') {
      char full[4096];
      snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
      bad |= run_file(full);
    }
    free(names[i]);
  }
  free(names);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  int bad = 0;
  for (int i = 1; i < argc; i++) bad |= run_path(argv[i]);
  if (inputs == 0) {
    fprintf(stderr, "fuzz_replay: no inputs found\n");
    return 1;
  }
  printf("fuzz_replay: %lu inputs passed\n", inputs);
  return bad;
}
