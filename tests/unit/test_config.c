/* TCPSM_* parsing: every variable, good and bad values, the exact error line. */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"

static const char *env_tab[16][2];

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < 16 && env_tab[i][0]; i++)
        if (strcmp(env_tab[i][0], name) == 0)
            return env_tab[i][1];
    return NULL;
}

static void env(const char *const kv[][2], int n)
{
    memset(env_tab, 0, sizeof(env_tab));
    for (int i = 0; i < n; i++) {
        env_tab[i][0] = kv[i][0];
        env_tab[i][1] = kv[i][1];
    }
}

#define ENV(...) do { const char *const kv_[][2] = { __VA_ARGS__ }; \
        env(kv_, (int)(sizeof(kv_) / sizeof(kv_[0]))); } while (0)

static int run(struct rt_settings *s, char *err)
{
    return config_from_env(fake_getenv, s, err, 256);
}

Test(config, ipv4_good_and_bad)
{
    uint32_t a;
    cr_assert_eq(config_parse_ipv4("198.18.0.1", &a), 0);
    cr_assert_eq(a, 0xc6120001u);
    cr_assert_eq(config_parse_ipv4("0.0.0.0", &a), 0);
    cr_assert_eq(config_parse_ipv4("255.255.255.255", &a), 0);
    cr_assert_eq(a, 0xffffffffu);
    const char *bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d",
                          "1..2.3", "0x1.2.3.4", "1.2.3.0004", "1.2.3.-4", "10" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_ipv4(bad[i], &a), -1, "accepted '%s'", bad[i]);
}

Test(config, cidr_good_and_bad)
{
    uint32_t a;
    uint8_t p;
    cr_assert_eq(config_parse_cidr("198.18.0.10/24", &a, &p), 0);
    cr_assert_eq(a, 0xc612000au);
    cr_assert_eq(p, 24);
    cr_assert_eq(config_parse_cidr("198.18.0.0/31", &a, &p), 0);
    cr_assert_eq(p, 31);
    const char *bad[] = { "198.18.0.10", "198.18.0.10/", "198.18.0.10/0", "198.18.0.10/32",
                          "198.18.0.10/33", "198.18.0.10/24x", "198.18.0.0/24", "198.18.0.255/24",
                          "127.0.0.2/8", "224.0.0.1/24", "0.1.2.3/8", "198.18.0.10/0024" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_cidr(bad[i], &a, &p), -1, "accepted '%s'", bad[i]);
}

Test(config, mac_good_and_bad)
{
    uint8_t m[6];
    cr_assert_eq(config_parse_mac("02:54:c6:12:00:0A", m), 0);
    const uint8_t want[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a };
    cr_assert_arr_eq(m, want, 6);
    const char *bad[] = { "", "02:54:c6:12:00", "02:54:c6:12:00:0a:01", "01:00:5e:00:00:01",
                          "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "02-54-c6-12-00-0a",
                          "2:54:c6:12:00:0a", "02:54:c6:12:00:0g", "02:54:c6:12:00:0a " };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_mac(bad[i], m), -1, "accepted '%s'", bad[i]);
}

Test(config, log_levels)
{
    int l = -1;
    cr_assert_eq(config_parse_log("error", &l), 0); cr_assert_eq(l, TCPSM_LOG_ERROR);
    cr_assert_eq(config_parse_log("warn", &l), 0);  cr_assert_eq(l, TCPSM_LOG_WARN);
    cr_assert_eq(config_parse_log("info", &l), 0);  cr_assert_eq(l, TCPSM_LOG_INFO);
    cr_assert_eq(config_parse_log("debug", &l), 0); cr_assert_eq(l, TCPSM_LOG_DEBUG);
    cr_assert_eq(config_parse_log("DEBUG", &l), -1);
    cr_assert_eq(config_parse_log("", &l), -1);
    cr_assert_eq(config_parse_log("verbose", &l), -1);
}

Test(config, default_mac_is_local_unicast_and_deterministic)
{
    uint8_t m[6], m2[6];
    config_default_mac(0xc612000au, m);
    const uint8_t want[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a };
    cr_assert_arr_eq(m, want, 6);
    config_default_mac(0xc612000bu, m2);
    cr_assert_neq(memcmp(m, m2, 6), 0);
    cr_assert_eq(m[0] & 3, 2);  /* locally administered, not group */
}

Test(config, unset_if_is_disabled_and_silent)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_ADDR", "garbage" });
    cr_assert_eq(run(&s, err), 0);
    cr_assert_str_empty(err);
    cr_assert_not(s.enabled);
}

Test(config, full_good_config)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_GW", "198.18.0.1" },
        { "TCPSM_MAC", "02:00:00:00:00:01" }, { "TCPSM_LOG", "debug" },
        { "TCPSM_TRACE", "/tmp/t.log" }, { "TCPSM_PCAP", "/tmp/p.pcap" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert(s.enabled);
    cr_assert_str_eq(s.ifname, "veth0");
    cr_assert_eq(s.addr, 0xc612000au);
    cr_assert_eq(s.prefix_len, 24);
    cr_assert_eq(s.gateway, 0xc6120001u);
    cr_assert_eq(s.mac[5], 1);
    cr_assert_eq(s.log_level, TCPSM_LOG_DEBUG);
    cr_assert_not(s.trace_stderr);
    cr_assert_str_eq(s.trace_path, "/tmp/t.log");
    cr_assert_str_eq(s.pcap_path, "/tmp/p.pcap");
}

Test(config, minimal_config_defaults)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_TRACE", "1" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.gateway, 0);
    const uint8_t want[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a };
    cr_assert_arr_eq(s.mac, want, 6);
    cr_assert_eq(s.log_level, TCPSM_LOG_WARN);
    cr_assert(s.trace_stderr);
    cr_assert_str_empty(s.trace_path);
    cr_assert_str_empty(s.pcap_path);
}

#define ADDR_FORM "A.B.C.D/N, X:X::X/N or both comma-separated, one of each family (e.g. 198.18.0.10/24,2001:2::10/64)"
#define GW_FORM "A.B.C.D and/or X:X::X comma-separated: a host inside the TCPSM_ADDR subnet of its family other than TCPSM_ADDR (IPv6: or a link-local fe80:: router)"

#define BAD(line_, ...) do { struct rt_settings s_; char err_[256]; ENV(__VA_ARGS__); \
        cr_assert_eq(run(&s_, err_), -1); cr_assert_str_eq(err_, line_); } while (0)

Test(config, bad_values_exact_lines)
{
    BAD("TCPSM_ADDR=10.0.0.1: expected " ADDR_FORM,
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "10.0.0.1" });
    BAD("TCPSM_ADDR is not set: expected " ADDR_FORM " when TCPSM_IF is set",
        { "TCPSM_IF", "veth0" });
    BAD("TCPSM_IF=: expected a network interface name (e.g. eth0)",
        { "TCPSM_IF", "" }, { "TCPSM_ADDR", "198.18.0.10/24" });
    BAD("TCPSM_IF=averyveryverylongname: expected a network interface name (e.g. eth0)",
        { "TCPSM_IF", "averyveryverylongname" }, { "TCPSM_ADDR", "198.18.0.10/24" });
    BAD("TCPSM_GW=198.18.1.1: expected " GW_FORM, { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_GW", "198.18.1.1" });
    BAD("TCPSM_GW=198.18.0.10: expected " GW_FORM, { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_GW", "198.18.0.10" });
    BAD("TCPSM_GW=gw: expected " GW_FORM, { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_GW", "gw" });
    BAD("TCPSM_MAC=ff:ff:ff:ff:ff:ff: expected xx:xx:xx:xx:xx:xx, a unicast MAC "
        "(e.g. 02:54:c6:12:00:0a)", { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_MAC", "ff:ff:ff:ff:ff:ff" });
    BAD("TCPSM_LOG=loud: expected error, warn, info or debug", { "TCPSM_LOG", "loud" });
    BAD("TCPSM_TRACE=: expected 1 (stderr), 0 (off) or a file path",
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_TRACE", "" });
    BAD("TCPSM_PCAP=: expected a file path",
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_PCAP", "" });
}

Test(config, host_check_unknown_interface)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "tcpsmnoif0" }, { "TCPSM_ADDR", "198.18.0.10/24" });
    cr_assert_eq(run(&s, err), 1);
    cr_assert_eq(config_check_host(&s, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "TCPSM_IF=tcpsmnoif0: no such network interface");
}

Test(config, host_check_kernel_address_refused)
{
    /* The loopback interface always exists and holds 127.0.0.1, which the
     * parser rejects anyway, so check the kernel-address probe directly. */
    cr_assert(config_kernel_has_addr(0x7f000001u));
    cr_assert_not(config_kernel_has_addr(0xc61200fe));
}

Test(config, unwritable_capture_and_trace_files_are_refused)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "lo" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_PCAP", "/nonexistent-tcpsm-dir/x.pcap" });
    cr_assert_eq(run(&s, err), 1);
    cr_assert_eq(config_check_files(&s, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "TCPSM_PCAP=/nonexistent-tcpsm-dir/x.pcap: cannot create the file: "
                          "No such file or directory");
    ENV({ "TCPSM_IF", "lo" }, { "TCPSM_ADDR", "198.18.0.10/24" },
        { "TCPSM_TRACE", "/nonexistent-tcpsm-dir/t.log" });
    cr_assert_eq(run(&s, err), 1);
    cr_assert_eq(config_check_files(&s, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "TCPSM_TRACE=/nonexistent-tcpsm-dir/t.log: cannot create the file: "
                          "No such file or directory");
    ENV({ "TCPSM_IF", "lo" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_TRACE", "1" },
        { "TCPSM_PCAP", "/dev/null" });
    cr_assert_eq(run(&s, err), 1);
    cr_assert_eq(config_check_files(&s, err, sizeof(err)), 0, "%s", err);
}

Test(config, trace_zero_is_off_and_log_applies_when_disabled)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_TRACE", "0" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_not(s.trace_stderr);
    cr_assert_str_empty(s.trace_path);
    ENV({ "TCPSM_LOG", "info" });
    cr_assert_eq(run(&s, err), 0);
    cr_assert_eq(s.log_level, TCPSM_LOG_INFO);
}

Test(config, offload_default_on_zero_off_else_refused)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert(s.offload, "the fast path is the default");
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_OFFLOAD", "0" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_not(s.offload);
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_OFFLOAD", "yes" });
    cr_assert_eq(run(&s, err), -1);
    cr_assert(strstr(err, "TCPSM_OFFLOAD=yes: expected") != NULL, "%s", err);
}

Test(config, mem_max_good_and_bad)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_MEM_MAX", "64M" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.mem_max, 64ull << 20);
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_MEM_MAX", "2G" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.mem_max, 2ull << 30);
    BAD("TCPSM_MEM_MAX=512K: expected a size in bytes from 1M to 64G (e.g. 64M, 2G)",
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_MEM_MAX", "512K" });
    BAD("TCPSM_MEM_MAX=lots: expected a size in bytes from 1M to 64G (e.g. 64M, 2G)",
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_MEM_MAX", "lots" });
}

Test(config, cidr6_good_and_bad)
{
    uint8_t a[16], p;
    cr_assert_eq(config_parse_cidr6("2001:2::10/64", a, &p), 0);
    const uint8_t want[16] = { 0x20, 0x01, 0, 2, [15] = 0x10 };
    cr_assert_arr_eq(a, want, 16);
    cr_assert_eq(p, 64);
    cr_assert_eq(config_parse_cidr6("2001:2::10/128", a, &p), 0);
    const char *bad[] = { "2001:2::10", "2001:2::10/", "2001:2::10/0", "2001:2::10/129",
                          "2001:2::10/64x", "::/64", "::1/128", "ff02::1/64", "fe80::1/64",
                          "::ffff:198.18.0.1/96", "2001:2:::10/64", "198.18.0.10/24",
                          "2001:2::10/00064" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_cidr6(bad[i], a, &p), -1, "accepted '%s'", bad[i]);
}

Test(config, dual_stack_addresses_either_order_or_alone)
{
    struct rt_settings s;
    char err[256];
    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24,2001:2::10/64" },
        { "TCPSM_GW", "2001:2::1,198.18.0.1" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.addr, 0xc612000au);
    cr_assert_eq(s.prefix6_len, 64);
    cr_assert_eq(s.addr6[15], 0x10);
    cr_assert_eq(s.gateway, 0xc6120001u);
    cr_assert_eq(s.gateway6[15], 1);
    const uint8_t mac4[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a };
    cr_assert_arr_eq(s.mac, mac4, 6, "the IPv4 address names the MAC");

    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "2001:2::10/64,198.18.0.10/24" },
        { "TCPSM_GW", "fe80::1" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.addr, 0xc612000au);
    cr_assert_eq(s.gateway, 0);
    cr_assert_eq(s.gateway6[0], 0xfe);

    ENV({ "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "2001:2::10/64" });
    cr_assert_eq(run(&s, err), 1, "%s", err);
    cr_assert_eq(s.addr, 0);
    const uint8_t mac6[6] = { 0x02, 0x56, 0, 0, 0, 0x10 };
    cr_assert_arr_eq(s.mac, mac6, 6);
}

Test(config, dual_stack_bad_values_exact_lines)
{
    BAD("TCPSM_ADDR=198.18.0.10/24,198.18.0.11/24: expected " ADDR_FORM,
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24,198.18.0.11/24" });
    BAD("TCPSM_ADDR=2001:2::10/64,2001:2::11/64: expected " ADDR_FORM,
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "2001:2::10/64,2001:2::11/64" });
    BAD("TCPSM_ADDR=198.18.0.10/24,: expected " ADDR_FORM,
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "198.18.0.10/24," });
    BAD("TCPSM_ADDR=fe80::10/64: expected " ADDR_FORM,
        { "TCPSM_IF", "veth0" }, { "TCPSM_ADDR", "fe80::10/64" });
    BAD("TCPSM_GW=2001:2::1: expected " GW_FORM, { "TCPSM_IF", "veth0" },
        { "TCPSM_ADDR", "198.18.0.10/24" }, { "TCPSM_GW", "2001:2::1" });
    BAD("TCPSM_GW=2001:3::1: expected " GW_FORM, { "TCPSM_IF", "veth0" },
        { "TCPSM_ADDR", "2001:2::10/64" }, { "TCPSM_GW", "2001:3::1" });
    BAD("TCPSM_GW=198.18.0.1: expected " GW_FORM, { "TCPSM_IF", "veth0" },
        { "TCPSM_ADDR", "2001:2::10/64" }, { "TCPSM_GW", "198.18.0.1" });
}
