/*
 * nsexec: the launcher every timed command of the benchmark goes through.
 *
 *   nsexec NSFILE PROG ARGS..    setns(NSFILE, CLONE_NEWNS), go back to the working directory,
 *                                execv PROG (no PATH search).
 *   nsexec -r NSFILE PROG ARGS.. the same in a child; print the child's peak RSS in KiB
 *                                (wait4's ru_maxrss, which covers the descendants it
 *                                waited for) on stdout. From this small static process, a
 *                                fork does not start at the caller's (Python's) RSS.
 *
 * crun refuses this machine's hybrid cgroup layout (v1 controllers + cgroup2 at
 * /sys/fs/cgroup/unified), so crun runs in a long-lived private mount namespace where
 * /sys/fs/cgroup/unified is unmounted (made once by bench.py, held by a sleeping process).
 * To keep the harness identical for all, berth, runc and the floor go through the same
 * launcher with NSFILE = the harness's own mount namespace (setns into the namespace one is
 * already in is allowed and changes nothing). The launcher's own cost (one static exec + one
 * setns) is the same for all.
 * Built by tools/bench/bench.py with gcc -O2 -static.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cwd[PATH_MAX];
	int have_cwd = getcwd(cwd, sizeof cwd) != NULL;

	if (argc > 1 && strcmp(argv[1], "-r") == 0) {
		pid_t pid = fork();
		if (pid < 0)
			return 125;
		if (pid > 0) {
			int status;
			struct rusage ru;
			if (wait4(pid, &status, 0, &ru) < 0)
				return 125;
			printf("%ld\n", ru.ru_maxrss);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
		}
		argv++;
		argc--;
	}

	if (argc < 3) {
		fprintf(stderr, "usage: nsexec NSFILE PROG [ARGS...]\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) {
		fprintf(stderr, "nsexec: %s: %s\n", argv[1], strerror(errno));
		return 125;
	}
	close(fd);
	/* setns(CLONE_NEWNS) moves root and cwd to the namespace's root. */
	if (have_cwd && chdir(cwd) < 0)
		(void)chdir("/");
	execv(argv[2], &argv[2]);
	fprintf(stderr, "nsexec: exec %s: %s\n", argv[2], strerror(errno));
	return 127;
}
