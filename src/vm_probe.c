/* One access attempt, for the AppArmor VM tests: prints OK, or ERR and the errno name.
 * Static, so it runs in the test initramfs with nothing else.
 *   probe read|write|create|device|exec|mmap|mount|connect|raw PATH
 *   probe listen PATH      (a unix socket server, run unconfined in the background)
 * Every probe is bounded: an access that neither succeeds nor fails within PROBE_SECONDS
 * (a read of a terminal waiting for input, a FIFO without a writer) prints BLOCKED instead. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINVAL: return "EINVAL";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    default: return strerror(e);
    }
}

/* Kept in step with vm::PROBE_SECONDS. */
#define PROBE_SECONDS 5

static void blocked(int sig) {
    (void)sig;
    static const char msg[] = "BLOCKED no answer in 5 s (the access was not refused at once)\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(3);
}

static int fail(void) { printf("ERR %s\n", name(errno)); return 1; }
static int ok(void) { printf("OK\n"); return 0; }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: probe OP PATH\n"); return 2; }
    const char *op = argv[1], *path = argv[2];
    if (strcmp(op, "listen")) {
        signal(SIGALRM, blocked);
        alarm(PROBE_SECONDS);
    }
    if (!strcmp(op, "read")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return fail();
        char b[1];
        if (read(fd, b, 1) < 0 && errno != EISDIR) return fail();
        return ok();
    }
    if (!strcmp(op, "device")) {
        /* A granted device: a node opened for writing, or a directory of nodes (/dev/dri). */
        int fd = open(path, O_WRONLY);
        if (fd < 0 && errno == EISDIR) fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd < 0) return fail();
        return ok();
    }
    if (!strcmp(op, "write") || !strcmp(op, "create")) {
        int flags = O_WRONLY | (!strcmp(op, "create") ? O_CREAT : 0);
        int fd = open(path, flags, 0644);
        if (fd < 0) return fail();
        return ok();
    }
    if (!strcmp(op, "exec")) {
        char *args[] = {(char *)path, NULL};
        char *env[] = {"PATH=/bin", NULL};
        fflush(stdout);
        execve(path, args, env); /* on success the target prints OK */
        return fail();
    }
    if (!strcmp(op, "mmap")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return fail();
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) return fail();
        return ok();
    }
    if (!strcmp(op, "mount")) {
        if (mount("none", path, "tmpfs", 0, NULL) < 0) return fail();
        return ok();
    }
    if (!strcmp(op, "connect") || !strcmp(op, "listen")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) return fail();
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        if (!strcmp(op, "listen")) {
            unlink(path);
            if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) return fail();
            for (;;) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
        }
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail();
        return ok();
    }
    if (!strcmp(op, "raw")) {
        int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        if (s < 0) return fail();
        return ok();
    }
    fprintf(stderr, "unknown op %s\n", op);
    return 2;
}
