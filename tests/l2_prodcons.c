/* l2_prodcons.c -- two producer/consumer pairs passing medium blocks.
 *
 * Both pairs run at once (4 threads). A producer allocates medium blocks of
 * random classes and sizes (deterministic seeds), fills each with a pattern
 * and pushes it onto its pair's queue; it also frees a few blocks of its own
 * (local frees into the same pages that receive the remote frees) and
 * verifies and frees the "reply" blocks its consumer sends back. A consumer
 * verifies every block and frees it -- most at once, every 8th only after a
 * delay, out of order -- and every 16th item allocates a reply block that
 * goes back to the producer (remote frees in both directions).
 *
 * Each producer sends ITEMS blocks (default 60000) but stops early after
 * 3 s (the test then says so); every block sent must arrive intact and be
 * freed.
 *
 * Usage: l2_prodcons [items-per-producer]
 */
#include "test_util.h"
#include "l2_common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { PAIRS = 2, QCAP = 512, LOCAL_RING = 16, DELAY_RING = 64 };
#define TIME_BUDGET_MS 3000

struct pair {
    int id;
    bq fwd, back;           /* producer -> consumer, consumer -> producer */
    size_t items;
    size_t sent, received, replies_sent, replies_checked;
    int stopped_early;
    int failed_prod, failed_cons;   /* each written by one thread only */
};

static uint64_t t_start;

static int check_item(const bq_item *it, const char *who, int pair)
{
    size_t off = l2_check(it->p, it->n, it->seed);
    if (off == (size_t)-1)
        return 0;
    fprintf(stderr,
            "l2_prodcons: pair %d: %s: block %p (%zu bytes, seed %#llx) "
            "corrupted at offset %zu (byte %#x, expected %#x)\n",
            pair, who, it->p, it->n, (unsigned long long)it->seed, off,
            ((unsigned char *)it->p)[off], pat_expected(it->seed, off));
    return 1;
}

static void *producer(void *arg)
{
    struct pair *pr = arg;
    uint64_t rng = 0xA11CE000ull + (uint64_t)pr->id * 0x1234567ull;
    bq_item local[LOCAL_RING];
    memset(local, 0, sizeof local);
    for (size_t i = 0; i < pr->items; i++) {
        if ((i & 255) == 0 && now_ms() - t_start > TIME_BUDGET_MS) {
            pr->stopped_early = 1;
            break;
        }
        size_t n = l2_random_size(&rng);
        bq_item it = {malloc(n), n, ((uint64_t)pr->id << 40) | i};
        CHECK(it.p != NULL, "pair %d: malloc(%zu) returned NULL", pr->id, n);
        l2_fill(it.p, n, it.seed);
        if (rng_range(&rng, 0, 9) == 0) {
            /* keep it for a while, free it ourselves later */
            bq_item *slot = &local[i % LOCAL_RING];
            if (slot->p) {
                pr->failed_prod |= check_item(slot, "producer (own block)", pr->id);
                free(slot->p);
            }
            *slot = it;
        } else {
            bq_push(&pr->fwd, it);
            pr->sent++;
        }
        bq_item reply;
        while (bq_try_pop(&pr->back, &reply)) {
            pr->failed_prod |= check_item(&reply, "producer (reply block)", pr->id);
            free(reply.p);
            pr->replies_checked++;
        }
    }
    bq_close(&pr->fwd);
    for (int k = 0; k < LOCAL_RING; k++)
        if (local[k].p) {
            pr->failed_prod |= check_item(&local[k], "producer (own block)", pr->id);
            free(local[k].p);
        }
    /* the consumer closes `back` when it is done */
    bq_item reply[32];
    size_t got;
    while ((got = bq_pop_some(&pr->back, reply, 32)) > 0)
        for (size_t k = 0; k < got; k++) {
            pr->failed_prod |= check_item(&reply[k], "producer (reply block)", pr->id);
            free(reply[k].p);
            pr->replies_checked++;
        }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *pr = arg;
    uint64_t rng = 0xC0C0A000ull + (uint64_t)pr->id * 0x7654321ull;
    bq_item delay[DELAY_RING];
    memset(delay, 0, sizeof delay);
    bq_item batch[32];
    size_t got, seq = 0;
    while ((got = bq_pop_some(&pr->fwd, batch, 32)) > 0) {
        for (size_t k = 0; k < got; k++, seq++) {
            pr->received++;
            pr->failed_cons |= check_item(&batch[k], "consumer", pr->id);
            if (seq % 8 == 0) {
                bq_item *slot = &delay[rng_range(&rng, 0, DELAY_RING - 1)];
                if (slot->p) {
                    pr->failed_cons |= check_item(slot, "consumer (delayed)", pr->id);
                    free(slot->p);
                }
                *slot = batch[k];
            } else {
                free(batch[k].p);
            }
            if (seq % 16 == 5) {
                size_t n = l2_random_size(&rng);
                bq_item r = {malloc(n), n, ((uint64_t)(pr->id + 16) << 40) | seq};
                CHECK(r.p != NULL, "pair %d: consumer malloc(%zu) = NULL", pr->id, n);
                l2_fill(r.p, n, r.seed);
                if (bq_try_push(&pr->back, r)) {
                    pr->replies_sent++;
                } else {
                    pr->failed_cons |= check_item(&r, "consumer (own reply)", pr->id);
                    free(r.p);
                }
            }
        }
    }
    for (int k = 0; k < DELAY_RING; k++)
        if (delay[k].p) {
            pr->failed_cons |= check_item(&delay[k], "consumer (delayed)", pr->id);
            free(delay[k].p);
        }
    bq_close(&pr->back);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t items = argc > 1 ? (size_t)atol(argv[1]) : 60000;
    CHECK(items >= 100, "usage: l2_prodcons [items-per-producer >= 100]");
    hk_require_if_expected("l2_prodcons");
    l2_classes_init();

    static struct pair pairs[PAIRS];
    pthread_t tp[PAIRS], tc[PAIRS];
    t_start = now_ms();
    for (int k = 0; k < PAIRS; k++) {
        pairs[k].id = k;
        pairs[k].items = items;
        bq_init(&pairs[k].fwd, QCAP);
        bq_init(&pairs[k].back, QCAP);
    }
    for (int k = 0; k < PAIRS; k++) {
        tc[k] = xspawn(consumer, &pairs[k]);
        tp[k] = xspawn(producer, &pairs[k]);
    }
    for (int k = 0; k < PAIRS; k++) {
        xjoin(tp[k]);
        xjoin(tc[k]);
    }
    uint64_t ms = now_ms() - t_start;
    for (int k = 0; k < PAIRS; k++) {
        struct pair *pr = &pairs[k];
        printf("l2_prodcons: pair %d: %zu blocks sent, %zu received, %zu "
               "replies sent, %zu checked%s\n", k, pr->sent, pr->received,
               pr->replies_sent, pr->replies_checked,
               pr->stopped_early ? " (stopped at the time budget)" : "");
        EXPECT(!pr->failed_prod && !pr->failed_cons,
               "pair %d: corrupted blocks (see above)", k);
        EXPECT(pr->sent == pr->received, "pair %d: %zu blocks sent but %zu "
               "received", k, pr->sent, pr->received);
        EXPECT(pr->replies_sent == pr->replies_checked, "pair %d: %zu replies "
               "sent but %zu checked", k, pr->replies_sent, pr->replies_checked);
        EXPECT(pr->sent > 0, "pair %d sent nothing", k);
        bq_destroy(&pr->fwd);
        bq_destroy(&pr->back);
    }
    printf("l2_prodcons: %llu ms\n", (unsigned long long)ms);
    return test_finish("l2_prodcons");
}
