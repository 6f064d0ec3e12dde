/* A C program for llmos: prints its arguments and environment, allocates
 * with malloc, formats with printf, and exits with status 0. Built with
 * `gcc -static-pie` by cargo xtask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    printf("hello from C on llmos\n");
    for (int i = 0; i < argc; i++)
        printf("argv[%d] = \"%s\"\n", i, argv[i]);
    const char *keys[] = {"PATH", "HOME", "TERM"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(keys[i]);
        printf("env %s = %s\n", keys[i], v ? v : "(unset)");
    }
    size_t n = 1 << 20;
    unsigned long *a = malloc(n * sizeof *a);
    if (!a) {
        perror("malloc");
        return 1;
    }
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++) a[i] = i;
    for (size_t i = 0; i < n; i++) sum += a[i];
    free(a);
    printf("sum = %lu\n", sum);
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", 3.14159265);
    printf("float = %s\n", buf);
    return 0;
}
