/* consumer.c -- a program built against an installed hakmem (tests/
 * install_consumer.sh, tests/deb_package.sh): it must run on hakmem, not
 * merely link it. Prints "consumer ok VERSION". */
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char *p = malloc(100);
  if (!p) return 1;
  memset(p, 7, 100);
  if (!hakmem_owns(p)) {
    fprintf(stderr, "consumer: malloc is not hakmem's\n");
    return 3;
  }
  free(p);
  if (strcmp(hakmem_version(), "0.0.0") <= 0) return 2;
  printf("consumer ok %s\n", hakmem_version());
  return 0;
}
