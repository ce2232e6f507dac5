/*
 * floor: the cheapest possible "container" start, to show how far a runtime is from the limit.
 *
 *   floor [-N] ROOTFS            clone into new pid, mount, uts, ipc (and net unless -N) namespaces,
 *                                make / rslave, bind ROOTFS onto itself, pivot_root(".", "."),
 *                                detach the old root, exec /bin/true; the parent waits and exits
 *                                with the child's status (as `runc run` does).
 *   floor -d PIDFILE ROOTFS PROG ARGS..
 *                                same namespaces and pivot, exec PROG, but the parent writes the
 *                                child's pid to PIDFILE and exits without waiting (detached).
 *   floor -e PID                 join PID's ipc, uts, net, pid and mount namespaces, fork,
 *                                exec /bin/true in the child, wait (the floor of `exec`).
 *
 * No cgroups, no /proc or /dev mounts, no capabilities, seccomp, rlimits or state files:
 * only the kernel work every runtime must do. Built by tools/bench/bench.py with gcc -O2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	_exit(125);
}

static const char *rootfs;
static char **prog;

static int child(void *arg)
{
	(void)arg;
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		die("make / rslave");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind rootfs");
	if (chdir(rootfs) < 0)
		die("chdir rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		die("umount old root");
	if (chdir("/") < 0)
		die("chdir /");
	execv(prog[0], prog);
	die("exec");
	return 125;
}

static int wait_child(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int do_exec(pid_t target)
{
	static const char *names[] = { "ipc", "uts", "net", "pid", "mnt" };
	int fds[5];
	char path[64];
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)target, names[i]);
		if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			die(path);
	}
	for (int i = 0; i < 5; i++) {
		if (setns(fds[i], 0) < 0)
			die(names[i]);
		close(fds[i]);
	}
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char *argv[] = { "/bin/true", NULL };
		execv(argv[0], argv);
		die("exec");
	}
	return wait_child(pid);
}

int main(int argc, char **argv)
{
	int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
	const char *pidfile = NULL;
	int i = 1;
	static char *true_argv[] = { "/bin/true", NULL };

	if (argc == 3 && strcmp(argv[1], "-e") == 0)
		return do_exec((pid_t)atoi(argv[2]));
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-N") == 0)
			flags &= ~CLONE_NEWNET;
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			pidfile = argv[++i];
		else {
			fprintf(stderr, "usage: floor [-N] [-d PIDFILE] ROOTFS [PROG ARGS...] | floor -e PID\n");
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "floor: missing ROOTFS\n");
		return 2;
	}
	rootfs = argv[i++];
	prog = i < argc ? &argv[i] : true_argv;

	/* A small stack is enough: the child only makes a few syscalls before execv. */
	static char stack[64 * 1024] __attribute__((aligned(16)));
	pid_t pid = clone(child, stack + sizeof stack, flags | SIGCHLD, NULL);
	if (pid < 0)
		die("clone");
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0)
			die(pidfile);
		return 0;
	}
	return wait_child(pid);
}
