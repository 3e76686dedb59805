/* Handing a stack to processes without CAP_NET_RAW (README "Process model",
 * least privilege).
 *
 * A privileged process (the stack's owner: `tcpsm --user`'s keeper,
 * tools/tcpsm_user.c) serves a unix socket file next to the shared region,
 * /dev/shm/<region name>.sock, whose owner, group and mode say who may
 * attach (TCPSM_SHARE). A process that lacks CAP_NET_RAW connects to it and
 * receives, through SCM_RIGHTS, a link socket of its own (an AF_PACKET socket
 * the owner opened, send-only until the process makes it receive and joins
 * it to the stack's PACKET_FANOUT group, which needs no capability) and,
 * when the region exists, the region's fd (which it may not be able to open
 * by name).
 *
 * Who keeps the link alive: every process holds its own link socket (a
 * forked child inherits its parent's until it gets its own); the owner's
 * exit only removes the socket file, so no new process without the
 * capability can attach after it; those attached go on. */
#ifndef TCPSM_SHARE_H
#define TCPSM_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct share_perm {
    uid_t uid;
    gid_t gid;
    mode_t mode;
};

/* "/dev/shm/<reg_name>.sock" */
void share_path(char *buf, size_t len, const char *reg_name);
/* The calling process may open AF_PACKET sockets (effective CAP_NET_RAW). */
bool share_have_net_raw(void);

/* Client: connects to path and receives a send-only link socket
 * (netdev_packet_tx_socket) and, if want_region and the region exists, the
 * region's fd (else *region_fd = -1). The server must run as root or as
 * this user. 0, or -1 with the reason in err (one line). */
int share_fetch(const char *path, bool want_region, int *link_fd, int *region_fd, char *err,
                size_t errlen);

/* TCPSM_SHARE: "OWNER:GROUP:MODE", each part optional (empty: the default
 * given in *p): a user name or uid, a group name or gid, an octal mode
 * (e.g. "www-data::0600", ":tcpsm:0660"). 0, or -1 with err set. */
int share_parse_perm(const char *spec, struct share_perm *p, char *err, size_t errlen);

/* Server: creates the socket file at path with the owner, group and mode of
 * p (atomically: bound under a temporary name, set up, renamed into place).
 * A stale file (nobody accepting) is replaced; a live one is an error.
 * Returns the listening fd (close-on-exec), or -1 with err set. */
int share_listen(const char *path, const struct share_perm *p, char *err, size_t errlen);

/* Opens a fresh send-only link socket: returns its fd or -errno. */
typedef int (*share_open_link_fn)(void *ctx);

/* Server: accepts one client on lfd and answers it (a link socket from
 * open_link, and the fd of region_path if asked and present). 0, or -1 if
 * nothing was accepted. Never blocks on a client that does not talk: the
 * request is read with a timeout. */
int share_serve_one(int lfd, share_open_link_fn open_link, void *ctx, const char *region_path);

#endif
