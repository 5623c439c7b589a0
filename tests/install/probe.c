/* probe.c -- a program that knows nothing of hakmem (no header, no -l) and
 * says whether hakmem serves its malloc: "probe: on hakmem" and exit 0 when
 * the process has hakmem_owns() and it owns malloc(16)'s block, else exit 1.
 * Run under the installed wrapper (bin/hakmem) by the install tests. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  int (*owns)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "hakmem_owns");
  void *p = malloc(16);
  int on_hakmem = owns && p && owns(p);
  free(p);
  printf("probe: %s\n", on_hakmem ? "on hakmem" : "NOT on hakmem");
  return on_hakmem ? 0 : 1;
}
