/* Operating a running stack from outside the process (internal header):
 *   <TCPSM_RUN_DIR>/<pid>.json  the stats region: the stack, its sockets and
 *                               counters as one JSON document, rewritten
 *                               whole (write + rename, so a reader never sees
 *                               a torn one) every second and on request
 *   <TCPSM_RUN_DIR>/<pid>.sock  the control socket (AF_UNIX, SOCK_SEQPACKET):
 *                               "stat" rewrites the region now and answers
 *                               "ok"; "capture" turns the connection into a
 *                               capture stream, one pcap record per message
 * Both are mode 0600: readable by the stack's own user (and root), as the
 * stack itself. `tcpsm stat` and `tcpsm capture` are the readers; they
 * remove the files of processes that are gone. */
#ifndef TCPSM_RUNTIME_OPS_H
#define TCPSM_RUNTIME_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_STATS_PERIOD_MS  1000
#define RT_STATS_MAX_SOCKS  4096    /* sockets listed per snapshot; the rest are counted */
#define RT_STATS_SOCKS_STEP 256     /* sockets copied per hold of the stack lock */
/* The once-a-second rewrite lists at most this many (one step): formatting
 * 4096 sockets is tens of ms of CPU at once, stolen from the program's busy
 * moments; `tcpsm stat` asks for a full listing on request. */
#define RT_STATS_PERIODIC_SOCKS RT_STATS_SOCKS_STEP
#define RT_CAPTURE_CLIENTS  4       /* capture streams at once; more are refused ("busy") */

/* runtime_stats.c. Takes rt.lock for the snapshot only (a copy of each
 * socket's numbers); formats and writes without it, inside the fork gate
 * (rt_fork_gate_enter: a fork waits for its allocations). Lists at most
 * max_socks sockets (capped at RT_STATS_MAX_SOCKS). 0 or -errno. */
int rt_stats_write(const char *path, size_t max_socks);

/* runtime_capture.c: the tap of every frame sent and received, from any
 * thread. Never blocks: a client whose socket is full loses the frame (counted). */
void rt_capture_frame(const uint8_t *data, uint32_t len);
/* A capture client is attached (one atomic load): worth preparing frames for it. */
bool rt_capture_active(void);
/* Takes fd (non-blocking set here); false if every slot is taken. */
bool rt_capture_add(int fd);
/* Free client slots (only the control thread adds clients). */
unsigned rt_capture_slots(void);
/* Closes the clients that hung up or failed. */
void rt_capture_reap(void);
/* For the stats region. */
void rt_capture_counts(unsigned *clients, uint64_t *frames, uint64_t *dropped);
/* The fds to watch for hang-ups: fills up to max, returns how many. */
unsigned rt_capture_fds(int *fds, unsigned max);
void rt_capture_close_all(void);

/* runtime_ctl.c: under rt.lock at start / without it at exit. */
void rt_ctl_start(void);
void rt_ctl_stop(void);
void rt_ctl_fork_child(void);    /* forget the parent's control thread and socket */

#endif
