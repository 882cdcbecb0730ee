/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * No base64 key leaves the codec in freed memory: this program interposes free() (under ASan: its
 * free hook) and looks for the key's base64 text in every block freed while a key container is
 * parsed (json-c's tokener buffer, its string objects, our own buffers).
 */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "../etsi014_codec.h"


/* base64 of the 32-byte key 0xf0 0xf1 ... (distinct from anything else in the process) */
#define KEY_B64 "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8="
#define KEY_ID "2b9f3c1e-5a7d-4e2f-9c3b-1d2e3f4a5b6c"

static int watching, leaked, freed;

/* a block of n bytes is being freed */
static void on_free(const void *p, size_t n)
{
	if (p && watching) {
		/* the key's first 24 base64 characters, enough to be the key and nothing else */
		if (memmem(p, n, KEY_B64, 24))
			leaked++;
		freed++;
	}
}

#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer owns malloc and free (scripts/check --sanitize): its free hook sees each block
 * before it is poisoned. gcc ships no header for these. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static void free_hook(const volatile void *p)
{
	on_free((const void *)p, p ? __sanitizer_get_allocated_size(p) : 0);
}

static void malloc_hook(const volatile void *p, size_t n)
{
}

static void watch_frees(void)
{
	/* ASan installs a pair only (both hooks non-NULL) */
	if (!__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook))
		abort();
}
#else
extern void __libc_free(void *p);

void free(void *p)
{
	on_free(p, p ? malloc_usable_size(p) : 0);
	__libc_free(p);
}

static void watch_frees(void)
{
}
#endif

START_TEST(key_container_freed_wiped)
{
	/* built in a block this test owns (the caller's body is the caller's to wipe) */
	static const char body[] = "{\"keys\":[{\"key_ID\":\"" KEY_ID "\",\"key\":\"" KEY_B64 "\"}]}";
	struct etsi014_key_container *kc = NULL;
	struct etsi014_error e = {0};
	int rc;

	watching = 1;
	rc = etsi014_parse_key_container(body, strlen(body), 1, 256, NULL, &kc, &e);
	watching = 0;
	ck_assert_int_eq(rc, ETSI014_OK);
	ck_assert_uint_eq(kc->keys[0].key[0], 0xf0);
	etsi014_key_container_free(kc);
	ck_assert_int_gt(freed, 0);	/* the interposition works */
	ck_assert_msg(leaked == 0, "%d freed block(s) still held the base64 key", leaked);
}
END_TEST

START_TEST(bad_container_freed_wiped)
{
	/* valid JSON, refused by the codec after the tokener read the key */
	static const char body[] = "{\"keys\":[{\"key_ID\":\"not-a-uuid\",\"key\":\"" KEY_B64 "\"}]}";
	struct etsi014_key_container *kc = NULL;
	struct etsi014_error e = {0};

	leaked = freed = 0;
	watching = 1;
	ck_assert_int_ne(etsi014_parse_key_container(body, strlen(body), 1, 256, NULL, &kc, &e),
			 ETSI014_OK);
	watching = 0;
	ck_assert_int_gt(freed, 0);
	ck_assert_msg(leaked == 0, "%d freed block(s) still held the base64 key", leaked);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("codec_wipe");
	TCase *tc = tcase_create("wipe");
	SRunner *sr;
	int failed;

	watch_frees();
	tcase_add_test(tc, key_container_freed_wiped);
	tcase_add_test(tc, bad_container_freed_wiped);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
