/* TCPSM_PCAP file format: exact header bytes, record layout, and tshark
 * reading the file when it is installed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcap_writer.h"

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

Test(pcap_writer, file_header_bytes)
{
    uint8_t h[PCAP_FILE_HDR_LEN];
    pcap_file_header(h);
    cr_assert_eq(get32(h), 0xa1b2c3d4u);
    cr_assert_eq(get16(h + 4), 2);
    cr_assert_eq(get16(h + 6), 4);
    cr_assert_eq(get32(h + 8), 0);
    cr_assert_eq(get32(h + 12), 0);
    cr_assert_eq(get32(h + 16), PCAP_SNAPLEN);
    cr_assert_eq(get32(h + 20), 1);
}

Test(pcap_writer, record_header_bytes)
{
    uint8_t r[PCAP_REC_HDR_LEN];
    pcap_record_header(r, 1700000000123456789ull, 60, 1514);
    cr_assert_eq(get32(r), 1700000000u);
    cr_assert_eq(get32(r + 4), 123456u);
    cr_assert_eq(get32(r + 8), 60);
    cr_assert_eq(get32(r + 12), 1514);
}

/* An ARP request and a minimal IPv4/ICMP frame. */
static const uint8_t arp_frame[42] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a,
    198, 18, 0, 10, 0, 0, 0, 0, 0, 0, 198, 18, 0, 1,
};

Test(pcap_writer, file_round_trip)
{
    char path[] = "/tmp/tcpsm-pcap-test-XXXXXX";
    int tfd = mkstemp(path);
    cr_assert_geq(tfd, 0);
    close(tfd);
    struct pcap_writer *w = pcap_writer_open(path);
    cr_assert_not_null(w);
    pcap_writer_frame_at(w, 2000000001000ull, arp_frame, sizeof(arp_frame));
    uint8_t *big = calloc(1, 300000);   /* larger than snaplen and than the buffer */
    memcpy(big, arp_frame, 14);
    pcap_writer_frame_at(w, 2000000002000ull, big, 300000);
    pcap_writer_frame(w, arp_frame, sizeof(arp_frame));
    pcap_writer_close(w);
    free(big);

    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static uint8_t buf[600000];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    size_t want = 24 + (16 + 42) + (16 + PCAP_SNAPLEN) + (16 + 42);
    cr_assert_eq(n, want);
    cr_assert_eq(get32(buf), 0xa1b2c3d4u);
    const uint8_t *r = buf + 24;
    cr_assert_eq(get32(r), 2000u);
    cr_assert_eq(get32(r + 4), 1u);
    cr_assert_eq(get32(r + 8), 42u);
    cr_assert_eq(memcmp(r + 16, arp_frame, 42), 0);
    r += 16 + 42;
    cr_assert_eq(get32(r + 8), PCAP_SNAPLEN);
    cr_assert_eq(get32(r + 12), 300000u);
    r += 16 + PCAP_SNAPLEN;
    cr_assert_gt(get32(r), 1600000000u);    /* realtime clock */
    cr_assert_eq(memcmp(r + 16, arp_frame, 42), 0);

    if (access("/usr/bin/tshark", X_OK) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "/usr/bin/tshark -r %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        char out[8192];
        size_t m = fread(out, 1, sizeof(out) - 1, p);
        out[m] = '\0';
        int st = pclose(p);
        cr_assert_eq(st, 0, "tshark failed: %s", out);
        cr_assert_null(strstr(out, "appears to be damaged"), "%s", out);
        cr_assert_null(strstr(out, "cut short"), "%s", out);
        cr_assert_not_null(strstr(out, "ARP"), "%s", out);
    }
    unlink(path);
}
