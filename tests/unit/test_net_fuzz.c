/* Deterministic fuzzing of the receive path: valid frames mutated by a
 * seeded PRNG (truncation, bit flips, random bytes, bad lengths/IHL/options,
 * EtherType) fed to tcpsm_stack_input. Checks that nothing crashes (the
 * sanitizer build turns any out-of-bounds access into a failure) and that
 * every frame is accounted for by a counter. */
#include <criterion/criterion.h>

#include "icmp.h"
#include "neigh.h"
#include "net_helpers.h"

#define FUZZ_FRAMES 150000

static uint64_t rng = 0x5eed5eed12345678ull;
static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}
static uint32_t below(uint32_t n) { return (uint32_t)(next() % n); }

/* Templates: a valid frame of each kind the stack parses. */
static size_t tmpl(uint8_t *f, unsigned kind)
{
    uint8_t m[256];
    static const uint8_t zero[6];
    switch (kind) {
    case 0:
        return mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    case 1:
        return mk_arp(f, MAC_US, MAC_GW, 2, MAC_GW, ADDR_GW, MAC_US, ADDR_US);
    case 2: {
        size_t ml = mk_echo(m, ICMP_ECHO, 1, 2, (const uint8_t *)"payload-payload", 15);
        return mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5 + below(3), m, ml);
    }
    case 3: {
        /* Destination unreachable quoting one of our TCP segments. */
        memset(m, 0, 64);
        m[0] = 3;
        m[1] = (uint8_t)below(16);
        m[8] = 0x45;
        wr16(m + 8 + 2, 60);
        m[8 + 9] = 6;
        wr32(m + 8 + 12, ADDR_US);
        wr32(m + 8 + 16, ADDR_PEER);
        wr16(m + 28, 40000);
        wr16(m + 30, 80);
        wr32(m + 32, 12345);
        wr16(m + 2, csum_fold(csum_partial(m, 36, 0)));
        return mk_ip(f, MAC_US, MAC_GW, ADDR_GW, ADDR_US, 1, 5, m, 36);
    }
    case 4: {
        /* A TCP SYN to port 80 (checksummed). */
        memset(m, 0, 24);
        wr16(m, 40000);
        wr16(m + 2, 80);
        wr32(m + 4, 1000);
        m[12] = 0x60;
        m[13] = 0x02;
        wr16(m + 14, 65535);
        m[20] = 2; m[21] = 4; wr16(m + 22, 1460);
        uint32_t ph = csum_pseudo(ADDR_PEER, ADDR_US, 6, 24);
        wr16(m + 16, csum_fold(csum_partial(m, 24, ph)));
        return mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 6, 5, m, 24);
    }
    default:
        memset(m, 0x33, 20);
        return mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 17, 5, m, 20);
    }
}

static size_t mutate(uint8_t *f, size_t n, size_t cap)
{
    unsigned k = 1 + below(4);
    for (unsigned i = 0; i < k; i++) {
        switch (below(9)) {
        case 0: n = below((uint32_t)n + 1); break;                          /* truncate */
        case 1: if (n) f[below((uint32_t)n)] ^= (uint8_t)(1u << below(8)); break; /* bit flip */
        case 2: if (n) f[below((uint32_t)n)] = (uint8_t)next(); break;      /* random byte */
        case 3: if (n > 17) wr16(f + 16, (uint16_t)next()); break;          /* IP total length */
        case 4: if (n > 14) f[14] = (uint8_t)(0x40 | below(16)); break;      /* IHL */
        case 5: if (n > 21) wr16(f + 20, (uint16_t)(below(2) ? 0x2000 : below(0x2000))); break; /* frag */
        case 6: if (n > 13) wr16(f + 12, below(2) ? 0x8100 : (uint16_t)next()); break; /* EtherType */
        case 7: { /* grow with junk (bad options region / trailing bytes) */
            size_t add = below(64);
            if (n + add > cap) add = cap - n;
            for (size_t j = 0; j < add; j++) f[n + j] = (uint8_t)next();
            n += add;
            break;
        }
        default: if (n > 14 + 20 + 3) f[14 + 20 + below(4)] = (uint8_t)next(); break; /* L4 header */
        }
    }
    /* Half the time repair the IPv4 header checksum so deeper layers see the mutations. */
    if (n >= 34 && rd16(f + 12) == 0x0800 && below(2)) {
        size_t hl = (size_t)(f[14] & 0xf) * 4;
        if (hl >= 20 && 14 + hl <= n) {
            wr16(f + 24, 0);
            wr16(f + 24, csum_fold(csum_partial(f + 14, hl, 0)));
        }
    }
    return n;
}

Test(net_fuzz, mutated_frames_never_crash_and_are_counted)
{
    struct capdev *cap = cap_new();
    struct tcpsm_config c = test_cfg();
    c.gateway = ADDR_GW;
    c.neigh_max = 8;
    struct tcpsm_stack *st = tcpsm_stack_new(&c, &cap->dev, 0);
    cr_assert_not_null(st);
    static uint8_t buf[8][TCPSM_FRAME_MAX];
    uint64_t now = 0;
    unsigned fed = 0;
    while (fed < FUZZ_FRAMES) {
        unsigned batch = 1 + below(8);
        struct tcpsm_frame fr[8];
        for (unsigned i = 0; i < batch; i++) {
            size_t n = tmpl(buf[i], below(6));
            n = mutate(buf[i], n, 200);
            fr[i] = (struct tcpsm_frame){ .data = buf[i], .len = (uint32_t)n };
        }
        now += below(50000000);
        tcpsm_stack_input(st, fr, batch, now);
        fed += batch;
        if (below(16) == 0)
            tcpsm_stack_timers(st, now);
        cap->n = 0;
    }
    const struct tcpsm_counters *k = tcpsm_stack_counters(st);
    cr_assert_eq(k->eth_in, fed);
    cr_assert_eq(k->eth_in, k->eth_drop_short + k->eth_drop_not_us + k->eth_drop_proto + k->arp_in +
                            k->ip_in + k->ip6_in, "every frame is dropped (counted) or handed on");
    uint64_t ip_drops = k->ip_drop_hdr + k->ip_drop_csum + k->ip_drop_not_us + k->ip_drop_frag +
                        k->ip_drop_proto;
    cr_assert_geq(k->ip_in, ip_drops + k->icmp_in);
    cr_assert_geq(k->icmp_in, k->icmp_drop_bad);
    cr_assert_geq(k->arp_in, k->arp_drop_bad);
    /* The mutations reach every drop reason. */
    cr_assert(k->eth_drop_short && k->eth_drop_not_us && k->eth_drop_proto);
    cr_assert(k->ip_drop_hdr && k->ip_drop_csum && k->ip_drop_not_us && k->ip_drop_frag &&
              k->ip_drop_proto);
    cr_assert(k->icmp_drop_bad && k->arp_drop_bad);
    cr_assert(k->icmp_echo_reply_out > 0 && k->arp_reply_out > 0);
    cr_assert_leq(neigh_count(st), 8);
    tcpsm_stack_free(st);
    free(cap);
}
