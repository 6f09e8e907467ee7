// Linux's event notification calls, which the Glibc module does not export (see
// shared/PLATFORM.md): epoll for the event-driven HTTP server, eventfd to wake a loop, and
// accept4 to take a connection non-blocking in one call (declared here: glibc declares it
// only under _GNU_SOURCE, which would make this module's system types differ from Glibc's),
// getrandom to draw many random bytes in one call (Glibc's module does not export it), and
// prctl(PR_SET_NAME) to name the calling thread for the kernel (prctl is variadic, which Swift
// cannot call).
#ifndef CEPOLL_H
#define CEPOLL_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/prctl.h>

struct sockaddr;
static inline int cepoll_accept4(int listener, int flags) {
    extern int accept4(int, struct sockaddr *, unsigned int *, int);
    return accept4(listener, (struct sockaddr *)0, (unsigned int *)0, flags);
}

static inline int cepoll_name_thread(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}
#endif
