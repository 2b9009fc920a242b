/*
 * curl_events.c - drives the loop's libcurl multi handle from an epoll set
 * (curl_multi_socket_action), so a loop turn costs what its ready sockets
 * cost, not what every open transfer costs.
 *
 * curl_multi_poll + curl_multi_perform walk every transfer on each wakeup
 * (a poll() over all their sockets, then a readiness check per transfer):
 * with the http payment provider that is thousands of open calls per turn,
 * and measured 3-4x the CPU per order of the simulated provider. Here libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when its next
 * timeout is due (CURLMOPT_TIMERFUNCTION); the loop waits in poll() on the
 * epoll descriptor plus its own few descriptors (signals, PostgreSQL).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

#define EVENTS_MAX 256

static struct {
    CURLM *multi;
    int epfd;
    int64_t due_ms; /* libcurl's next timeout, -1: none */
} E = {.epfd = -1, .due_ms = -1};

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy, (void)userp, (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(E.epfd, EPOLL_CTL_DEL, s, NULL); /* (gone already if closed) */
        return 0;
    }
    struct epoll_event ev = {.data.fd = s};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(E.epfd, EPOLL_CTL_MOD, s, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(E.epfd, EPOLL_CTL_ADD, s, &ev) == 0)
        return 0;
    /* (out of memory or epoll watches): returning -1 would make libcurl fail
     * every transfer of the multi handle; this one instead runs into its own
     * timeout (every SQS request and payment call has one) and is retried */
    log_warn(NULL, "cannot watch a libcurl socket (epoll_ctl: %s)", strerror(errno));
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi, (void)userp;
    E.due_ms = timeout_ms < 0 ? -1 : util_mono_ms() + timeout_ms;
    return 0;
}

int curl_events_init(CURLM *multi, char *err, size_t errlen)
{
    E.multi = multi;
    E.due_ms = -1;
    E.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (E.epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK) {
        snprintf(err, errlen, "cannot set the libcurl socket callbacks");
        close(E.epfd);
        E.epfd = -1;
        return -1;
    }
    return 0;
}

void curl_events_cleanup(void)
{
    if (E.epfd >= 0)
        close(E.epfd);
    E.epfd = -1;
}

static void timeout_action(void)
{
    int running;
    if (E.due_ms >= 0 && util_mono_ms() >= E.due_ms) {
        E.due_ms = -1; /* (the callback sets the next one) */
        curl_multi_socket_action(E.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

void curl_events_wait(struct pollfd *fds, unsigned nfds, int timeout_ms)
{
    /* fds[0] is ours: the epoll set, readable when a curl socket is ready */
    fds[0] = (struct pollfd){.fd = E.epfd, .events = POLLIN};
    if (E.due_ms >= 0) {
        int64_t left = E.due_ms - util_mono_ms();
        if (left < timeout_ms)
            timeout_ms = left < 0 ? 0 : (int)left;
    }
    for (unsigned i = 1; i < nfds; i++)
        fds[i].revents = 0;
    if (poll(fds, nfds, timeout_ms) > 0 && (fds[0].revents & POLLIN)) {
        struct epoll_event evs[EVENTS_MAX];
        int n = epoll_wait(E.epfd, evs, EVENTS_MAX, 0);
        for (int i = 0; i < n; i++) {
            int mask = 0, running;
            if (evs[i].events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(E.multi, evs[i].data.fd, mask, &running);
        }
    }
    timeout_action();
}
