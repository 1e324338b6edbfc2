/*
 * netbench: the one application program every data-plane variant is
 * measured with (plain TCP, stunnel, meshless), so differences are the
 * proxies' alone. Compiled by bench/dataplane.bench.ts with `cc -O2`.
 *
 *   netbench serve <port>
 *       echo server: one thread per connection, echoes every byte, closes
 *       on EOF.
 *   netbench pingpong <host> <port> <size> <count> [rate]
 *       one connection; <count> round trips of <size> bytes (send, read the
 *       echo back completely); prints one JSON line with quantiles in us.
 *       With [rate] (round trips/s) the round trips are paced (load mode).
 *   netbench connrate <host> <port> <seconds> <parallel>
 *       <parallel> threads each loop: connect, send 1 KiB, read 1 KiB,
 *       close; prints one JSON line with connections/s and errors.
 *
 * Written in C rather than Node so that the client's own cost and jitter
 * (event loop, GC) stay far below the proxies' (docs/performance.md: +136..219 us added
 * per round trip), and the connection-rate client can outrun a proxy on a
 * 2-core machine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

static void *echo_conn(void *arg) {
  int fd = (int)(long)arg;
  char buf[65536];
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (write_all(fd, buf, (size_t)r) < 0) break;
  }
  close(fd);
  return NULL;
}

static int serve(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1024) < 0) {
    perror("bind/listen");
    return 1;
  }
  printf("listening %d\n", port);
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, echo_conn, (void *)(long)c) != 0) close(c);
    pthread_attr_destroy(&attr);
  }
}

static int dial(const char *host, int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  return s;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double q(const double *sorted, long n, double p) {
  long i = (long)(p * (double)n);
  if (i >= n) i = n - 1;
  return sorted[i];
}

static int pingpong(const char *host, int port, long size, long count, double rate) {
  int fd = dial(host, port);
  if (fd < 0) {
    perror("connect");
    return 1;
  }
  char *buf = malloc((size_t)size);
  memset(buf, 'p', (size_t)size);
  double *lat = malloc(sizeof(double) * (size_t)count);
  long warm = count / 20 + 10;
  double start = now_us();
  for (long i = -warm; i < count; i++) {
    if (rate > 0 && i >= 0) {
      double due = start + (double)i * 1e6 / rate;
      double wait = due - now_us();
      if (wait > 0) {
        struct timespec ts = {(time_t)(wait / 1e6), (long)((wait - (double)(long)(wait / 1e6) * 1e6) * 1e3)};
        nanosleep(&ts, NULL);
      }
    }
    if (i == 0) start = now_us();
    double t0 = now_us();
    if (write_all(fd, buf, (size_t)size) < 0 || read_all(fd, buf, (size_t)size) < 0) {
      fprintf(stderr, "round trip %ld failed: %s\n", i, strerror(errno));
      return 1;
    }
    if (i >= 0) lat[i] = now_us() - t0;
  }
  double elapsed = now_us() - start;
  close(fd);
  qsort(lat, (size_t)count, sizeof(double), cmp_double);
  double sum = 0;
  for (long i = 0; i < count; i++) sum += lat[i];
  printf("{\"size\":%ld,\"count\":%ld,\"seconds\":%.3f,\"rps\":%.1f,\"mean\":%.1f,\"p50\":%.1f,"
         "\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}\n",
         size, count, elapsed / 1e6, (double)count / (elapsed / 1e6), sum / (double)count,
         q(lat, count, 0.5), q(lat, count, 0.9), q(lat, count, 0.99), q(lat, count, 0.999),
         lat[count - 1]);
  return 0;
}

struct connrate_arg {
  const char *host;
  int port;
  double until;
  long ok;
  long errors;
};

static void *connrate_worker(void *p) {
  struct connrate_arg *a = p;
  char buf[1024];
  memset(buf, 'c', sizeof buf);
  while (now_us() < a->until) {
    int fd = dial(a->host, a->port);
    if (fd < 0) {
      a->errors++;
      usleep(1000);
      continue;
    }
    if (write_all(fd, buf, sizeof buf) < 0 || read_all(fd, buf, sizeof buf) < 0)
      a->errors++;
    else
      a->ok++;
    close(fd);
  }
  return NULL;
}

static int connrate(const char *host, int port, double seconds, int parallel) {
  pthread_t t[64];
  struct connrate_arg args[64];
  if (parallel < 1 || parallel > 64) return 2;
  double start = now_us();
  for (int i = 0; i < parallel; i++) {
    args[i] = (struct connrate_arg){host, port, start + seconds * 1e6, 0, 0};
    pthread_create(&t[i], NULL, connrate_worker, &args[i]);
  }
  long ok = 0, errors = 0;
  for (int i = 0; i < parallel; i++) {
    pthread_join(t[i], NULL);
    ok += args[i].ok;
    errors += args[i].errors;
  }
  double elapsed = (now_us() - start) / 1e6;
  printf("{\"connections\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"cps\":%.1f}\n", ok, errors, elapsed,
         (double)ok / elapsed);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]));
  if (argc >= 6 && strcmp(argv[1], "pingpong") == 0)
    return pingpong(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]),
                    argc >= 7 ? atof(argv[6]) : 0);
  if (argc >= 6 && strcmp(argv[1], "connrate") == 0)
    return connrate(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
  fprintf(stderr, "usage: netbench serve|pingpong|connrate ...\n");
  return 2;
}
