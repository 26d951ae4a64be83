/*
 * test_file — rs_base's files (workers/base/rs_file.h): rs_remove_tree
 * removes a whole tree, never what a symbolic link inside it points to,
 * and says when there is nothing to remove.
 */
#define _XOPEN_SOURCE 700 /* mkdir, symlink */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs_file.h"
#include "rs_test_util.h"

TestSuite(file, .init = rs_test_dir_setup, .fini = rs_test_dir_teardown);

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

Test(file, remove_tree_removes_everything_under_it)
{
    char tree[128], sub[160], deep[192], p[224], outside[128], link[192];
    snprintf(tree, sizeof tree, "%s/tree", rs_test_dir);
    snprintf(sub, sizeof sub, "%s/a", tree);
    snprintf(deep, sizeof deep, "%s/b", sub);
    cr_assert_eq(mkdir(tree, 0700), 0);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(mkdir(deep, 0700), 0);
    snprintf(p, sizeof p, "%s/top.txt", tree);
    put(p, "top");
    snprintf(p, sizeof p, "%s/deep.txt", deep);
    put(p, "deep");
    /* a link out of the tree: the link goes, its target stays */
    snprintf(outside, sizeof outside, "%s/outside.txt", rs_test_dir);
    put(outside, "keep me");
    snprintf(link, sizeof link, "%s/link", sub);
    cr_assert_eq(symlink(outside, link), 0);

    cr_assert_eq(rs_remove_tree(tree), 0, "%s", strerror(errno));
    cr_assert_not(exists(tree));
    cr_assert(exists(outside));
    size_t n = 0;
    char *text = rs_read_file(outside, &n);
    cr_assert_str_eq(text, "keep me");
    free(text);
}

Test(file, remove_tree_of_a_file_and_of_nothing)
{
    char p[128];
    snprintf(p, sizeof p, "%s/one.txt", rs_test_dir);
    put(p, "x");
    cr_assert_eq(rs_remove_tree(p), 0);
    cr_assert_not(exists(p));
    errno = 0;
    cr_assert_eq(rs_remove_tree(p), -1);
    cr_assert_eq(errno, ENOENT);
}
