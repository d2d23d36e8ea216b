/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A tiny test harness for the host unit tests: each TEST() runs in a
 * child process under a timeout and prints one TAP line. A test fails on
 * the first CHECK that does not hold, skips with SKIP(reason).
 */
#ifndef KVMI_TEST_HARNESS_H
#define KVMI_TEST_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define T_SKIP		77
#define T_TIMEOUT	60	/* seconds; a lost wakeup shows up as this */

struct t_test {
	const char *tname;
	void (*fn)(void);
};

static struct t_test t_tests[64];
static int t_nr;

#define TEST(name)							\
	static void t_##name(void);					\
	__attribute__((constructor)) static void t_reg_##name(void)	\
	{								\
		t_tests[t_nr].tname = #name;				\
		t_tests[t_nr++].fn = t_##name;				\
	}								\
	static void t_##name(void)

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# %s:%d: CHECK(%s) failed\n",		\
			__FILE__, __LINE__, #cond);			\
		exit(1);						\
	}								\
} while (0)

#define CHECK_EQ(exp, got) do {						\
	long long __e = (long long)(exp), __g = (long long)(got);	\
	if (__e != __g) {						\
		fprintf(stderr, "# %s:%d: %s == %s: expected %lld (%#llx), got %lld (%#llx)\n", \
			__FILE__, __LINE__, #exp, #got, __e, __e, __g, __g); \
		exit(1);						\
	}								\
} while (0)

#define SKIP(...) do {							\
	fprintf(stderr, "# SKIP " __VA_ARGS__);				\
	fprintf(stderr, "\n");						\
	exit(T_SKIP);							\
} while (0)

int main(int argc, char **argv)
{
	int i, st, fail = 0;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < t_nr; i++) {
		if (argc > 1 && strcmp(argv[1], t_tests[i].tname))
			continue;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			alarm(T_TIMEOUT);
			t_tests[i].fn();
			exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid) {
			printf("not ok %s # fork/wait failed\n", t_tests[i].tname);
			fail = 1;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			printf("ok %s\n", t_tests[i].tname);
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == T_SKIP) {
			printf("ok %s # SKIP\n", t_tests[i].tname);
		} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
			printf("not ok %s # timed out after %ds\n",
			       t_tests[i].tname, T_TIMEOUT);
			fail = 1;
		} else {
			printf("not ok %s # %s %d\n", t_tests[i].tname,
			       WIFSIGNALED(st) ? "signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			fail = 1;
		}
	}
	return fail;
}

#endif /* KVMI_TEST_HARNESS_H */
