/*
 * httpd: the minimal HTTP/1.1 responder the new-connection benchmarks
 * (ApacheBench, wrk) dial. One thread, one epoll loop: accept, read the
 * request up to its blank line, answer a fixed 2-byte body with
 * `Connection: close`, close. Compiled by bench/run.ts with `cc -O2`.
 *
 *   httpd <port>
 *
 * Written in C so that the server's own cost per connection (a few us)
 * stays far below what the proxies under test add: the figure measured is
 * the path's, not the responder's. Closing first also keeps the client's
 * ephemeral ports out of TIME_WAIT (the server's side holds it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define REQ_MAX 4096

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 2\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "ok";

/* Bytes of the request read so far, per fd (only the tail matters). */
static unsigned short seen[MAX_FD];
static char tail[MAX_FD][4];

static void finish(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  seen[fd] = 0;
}

/* Reads what is there; answers and closes once the blank line has come. */
static void on_readable(int ep, int fd) {
  char buf[REQ_MAX];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return finish(ep, fd);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      return finish(ep, fd);
    }
    for (ssize_t i = 0; i < n; i++) {
      memmove(tail[fd], tail[fd] + 1, 3);
      tail[fd][3] = buf[i];
      if (memcmp(tail[fd], "\r\n\r\n", 4) == 0) {
        /* A few dozen bytes: the socket's send buffer takes them at once. */
        if (write(fd, RESPONSE, sizeof RESPONSE - 1) < 0) perror("write");
        return finish(ep, fd);
      }
    }
    if ((seen[fd] += (unsigned short)n) > REQ_MAX) return finish(ep, fd);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: httpd <port>\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
    perror("bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd != ls) {
        on_readable(ep, fd);
        continue;
      }
      for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) break;
        if (c >= MAX_FD) {
          close(c);
          continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        seen[c] = 0;
        memset(tail[c], 0, 4);
        struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        /* The request usually arrives with the handshake's last ACK. */
        on_readable(ep, c);
      }
    }
  }
}
