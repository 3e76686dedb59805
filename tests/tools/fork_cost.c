/* What one fork() costs a process holding N sockets (issue 6: a forking
 * server returns to accept() later than on the kernel).
 *
 *   fork_cost N M
 *
 * Opens N listening sockets (port 0: on the stack under the library, the
 * kernel's without), then forks M times, each child calling _exit(0) at
 * once and the parent waiting for it, and prints the mean wall-clock time
 * of fork() itself in the parent and of the whole fork-exit-wait round, in
 * microseconds, and the parent's CPU time per fork (getrusage). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fork_cost N M\n");
        return 2;
    }
    int n = atoi(argv[1]), m = atoi(argv[2]);
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
            perror("socket/bind/listen");
            return 1;
        }
    }
    double in_fork = 0, t0 = now_us(), c0 = cpu_us();
    for (int i = 0; i < m; i++) {
        double a = now_us();
        pid_t p = fork();
        in_fork += now_us() - a;
        if (p < 0) {
            perror("fork");
            return 1;
        }
        if (p == 0)
            _exit(0);
        int st;
        waitpid(p, &st, 0);
    }
    double round = (now_us() - t0) / m, cpu = (cpu_us() - c0) / m;
    printf("sockets %d forks %d fork_us %.1f round_us %.1f parent_cpu_us %.1f\n", n, m,
           in_fork / m, round, cpu);
    return 0;
}
