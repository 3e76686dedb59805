/* The operating settings (config_ops.c): buffer sizes with K/M suffixes and
 * their bounds, TCPSM_RUN_DIR, and the exact error lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"

static const char *ops_env[8][2];

static const char *ops_getenv(const char *name)
{
    for (int i = 0; i < 8 && ops_env[i][0]; i++)
        if (strcmp(ops_env[i][0], name) == 0)
            return ops_env[i][1];
    return NULL;
}

static int with(const char *k1, const char *v1, const char *k2, const char *v2,
                struct rt_settings *s, char *err)
{
    memset(ops_env, 0, sizeof(ops_env));
    ops_env[0][0] = "TCPSM_IF", ops_env[0][1] = "eth0";
    ops_env[1][0] = "TCPSM_ADDR", ops_env[1][1] = "198.18.0.10/24";
    ops_env[2][0] = k1, ops_env[2][1] = v1;
    ops_env[3][0] = k2, ops_env[3][1] = v2;
    return config_from_env(ops_getenv, s, err, 256);
}

Test(config_ops, sizes)
{
    uint32_t v;
    cr_assert_eq(config_parse_size("262144", &v), 0);
    cr_assert_eq(v, 262144u);
    cr_assert_eq(config_parse_size("256K", &v), 0);
    cr_assert_eq(v, 262144u);
    cr_assert_eq(config_parse_size("16m", &v), 0);
    cr_assert_eq(v, 16u << 20);
    cr_assert_eq(config_parse_size("4k", &v), 0);
    cr_assert_eq(v, 4096u);
    cr_assert_eq(config_parse_size("4095", &v), -1);       /* below 4 KiB */
    cr_assert_eq(config_parse_size("17M", &v), -1);        /* above the core's 16 MiB */
    cr_assert_eq(config_parse_size("99999999999999999999", &v), -1);
    cr_assert_eq(config_parse_size("1G", &v), -1);
    cr_assert_eq(config_parse_size("-1", &v), -1);
    cr_assert_eq(config_parse_size("", &v), -1);
    cr_assert_eq(config_parse_size("1M ", &v), -1);
}

Test(config_ops, buffers_from_env)
{
    struct rt_settings s;
    char err[256];
    cr_assert_eq(with("TCPSM_SNDBUF", "1M", "TCPSM_RCVBUF_MAX", "8M", &s, err), 1, "%s", err);
    cr_assert_eq(s.sndbuf, 1u << 20);
    cr_assert_eq(s.rcvbuf, 0u);                 /* unset: the core's default */
    cr_assert_eq(s.rcvbuf_max, 8u << 20);
    cr_assert_eq(with("TCPSM_RCVBUF", "lots", NULL, NULL, &s, err), -1);
    cr_assert_str_eq(err, "TCPSM_RCVBUF=lots: expected a size in bytes from 4K to 16M "
                          "(e.g. 262144, 256K, 4M)");
}

Test(config_ops, run_dir)
{
    struct rt_settings s;
    char err[256];
    cr_assert_eq(with(NULL, NULL, NULL, NULL, &s, err), 1);
    cr_assert_str_eq(s.run_dir, "/run/tcpsm");
    cr_assert_eq(with("TCPSM_RUN_DIR", "0", NULL, NULL, &s, err), 1);
    cr_assert_str_eq(s.run_dir, "");
    cr_assert_eq(with("TCPSM_RUN_DIR", "/tmp/x", NULL, NULL, &s, err), 1);
    cr_assert_str_eq(s.run_dir, "/tmp/x");
    cr_assert_eq(with("TCPSM_RUN_DIR", "relative", NULL, NULL, &s, err), -1);
    cr_assert_str_eq(err, "TCPSM_RUN_DIR=relative: expected an absolute directory path, or 0 "
                          "(no stats region, no capture socket)");
}

Test(config_ops, mtu_probing)
{
    struct rt_settings s;
    char err[256];
    cr_assert_eq(with("TCPSM_MTU_PROBING", "2", NULL, NULL, &s, err), 1);
    cr_assert_eq(s.mtu_probing, 2);
    cr_assert_eq(with("TCPSM_MTU_PROBING", "1", NULL, NULL, &s, err), 1);
    cr_assert_eq(s.mtu_probing, 1);
    cr_assert_eq(with("TCPSM_MTU_PROBING", "3", NULL, NULL, &s, err), -1);
    cr_assert_str_eq(err, "TCPSM_MTU_PROBING=3: expected 1 (probe the path MTU after a black "
                          "hole, the default) or 2 (from the start of every connection)");
}
