// cxx_new_delete.cpp -- C++ allocation paths (operator new/delete in all
// forms, STL containers) on top of the malloc replacement.
//
// libstdc++'s operator new calls malloc (aligned new calls aligned_alloc),
// so under hakmem all of these blocks come from hakmem; malloc_usable_size
// on them must report at least the requested size.
//
// Usage: cxx_new_delete
#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <dlfcn.h>

static int failures = 0;

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            ++failures;                                                       \
            std::fprintf(stderr, "%s:%d: EXPECT(%s) failed: ", __FILE__,      \
                         __LINE__, #cond);                                    \
            std::fprintf(stderr, __VA_ARGS__);                                \
            std::fputc('\n', stderr);                                         \
        }                                                                     \
    } while (0)

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,       \
                         __LINE__, #cond);                                    \
            std::fprintf(stderr, __VA_ARGS__);                                \
            std::fputc('\n', stderr);                                         \
            std::exit(1);                                                     \
        }                                                                     \
    } while (0)

static bool aligned(const void *p, std::size_t a)
{
    return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

struct alignas(64) Cache64 {
    unsigned char bytes[64];
    int id;
};

struct alignas(4096) Page {
    unsigned char bytes[100];
};

struct Tracked {
    static int live;
    int v;
    std::string name;
    explicit Tracked(int x) : v(x), name("tracked-" + std::to_string(x)) { ++live; }
    ~Tracked() { --live; }
};
int Tracked::live = 0;

// Volatile sizes keep the compiler from folding the allocation sizes, and
// storing pointers into a volatile sink keeps it from eliding new/delete
// pairs (allowed since C++14).
static volatile std::size_t vsize_huge = static_cast<std::size_t>(-1) / 2;
static void *volatile sink;

static void test_scalar_and_array()
{
    std::puts("[cxx] new/delete, new[]/delete[]");
    for (int i = 0; i < 20000; i++) {
        int *p = new int(i);
        sink = p;
        EXPECT(*p == i, "new int(%d) holds %d", i, *p);
        EXPECT(aligned(p, alignof(int)), "new int misaligned: %p", (void *)p);
        delete p;
    }
    for (std::size_t n = 1; n < 3000000; n = n * 3 + 1) {
        auto *a = new std::uint32_t[n];
        for (std::size_t i = 0; i < n; i++)
            a[i] = static_cast<std::uint32_t>(i * 2654435761u);
        std::size_t u = malloc_usable_size(a);
        EXPECT(u >= n * sizeof(std::uint32_t),
               "new uint32_t[%zu]: malloc_usable_size = %zu < %zu", n, u,
               n * sizeof(std::uint32_t));
        for (std::size_t i = 0; i < n; i++)
            if (a[i] != static_cast<std::uint32_t>(i * 2654435761u)) {
                EXPECT(false, "new uint32_t[%zu]: element %zu changed", n, i);
                break;
            }
        delete[] a;
    }
    // arrays of objects with destructors (array cookie path)
    for (int n = 1; n < 2000; n = n * 2 + 1) {
        Tracked::live = 0;
        std::vector<Tracked *> v;
        for (int i = 0; i < n; i++)
            v.push_back(new Tracked(i));
        EXPECT(Tracked::live == n, "live=%d expected %d", Tracked::live, n);
        for (int i = 0; i < n; i++) {
            EXPECT(v[i]->v == i && v[i]->name == "tracked-" + std::to_string(i),
                   "Tracked #%d corrupted", i);
            delete v[i];
        }
        EXPECT(Tracked::live == 0, "live=%d after deletes", Tracked::live);
        struct Obj {
            std::uint64_t a = 0x1122334455667788ull, b = 0;
            ~Obj() { b = 1; }
        };
        Obj *arr = new Obj[n];
        sink = arr;
        for (int i = 0; i < n; i++)
            EXPECT(arr[i].a == 0x1122334455667788ull, "Obj[%d] not constructed", i);
        delete[] arr;
    }
    // sized delete (C++14) goes through operator delete(void*, size_t)
    for (int i = 1; i < 5000; i += 7) {
        char *p = static_cast<char *>(::operator new(static_cast<std::size_t>(i)));
        std::memset(p, 0x3c, static_cast<std::size_t>(i));
        EXPECT(malloc_usable_size(p) >= static_cast<std::size_t>(i),
               "operator new(%d): usable %zu", i, malloc_usable_size(p));
        ::operator delete(p, static_cast<std::size_t>(i));
    }
}

static void test_aligned_new()
{
    std::puts("[cxx] aligned new");
    std::vector<Cache64 *> v;
    for (int i = 0; i < 5000; i++) {
        Cache64 *c = new Cache64();
        EXPECT(aligned(c, 64), "new Cache64 (alignas 64) = %p misaligned",
               (void *)c);
        c->id = i;
        std::memset(c->bytes, i & 0xff, sizeof c->bytes);
        v.push_back(c);
    }
    for (int i = 0; i < 5000; i++) {
        EXPECT(v[i]->id == i && v[i]->bytes[63] == (i & 0xff),
               "Cache64 #%d corrupted", i);
        delete v[i];
    }
    Cache64 *arr = new Cache64[1000];
    EXPECT(aligned(arr, 64), "new Cache64[1000] misaligned: %p", (void *)arr);
    delete[] arr;

    for (int i = 0; i < 200; i++) {
        Page *pg = new Page();
        sink = pg;
        EXPECT(aligned(pg, 4096), "new Page (alignas 4096) = %p", (void *)pg);
        pg->bytes[99] = 7;
        delete pg;
    }
    for (std::size_t al = 1; al <= (std::size_t(1) << 21); al <<= 1) {
        for (std::size_t sz : {std::size_t(1), std::size_t(100), al, al * 3 + 5}) {
            void *p = ::operator new(sz, std::align_val_t(al));
            EXPECT(aligned(p, al), "operator new(%zu, align_val_t(%zu)) = %p",
                   sz, al, p);
            EXPECT(malloc_usable_size(p) >= sz,
                   "operator new(%zu, align %zu): usable %zu", sz, al,
                   malloc_usable_size(p));
            std::memset(p, 0x5a, sz);
            if (sz & 1)
                ::operator delete(p, std::align_val_t(al));
            else
                ::operator delete(p, sz, std::align_val_t(al));
        }
        void *q = ::operator new[](al + 1, std::align_val_t(al));
        EXPECT(aligned(q, al), "operator new[](align %zu) = %p", al, q);
        ::operator delete[](q, std::align_val_t(al));
    }
    void *n4096 = ::operator new(12345, std::align_val_t(4096), std::nothrow);
    EXPECT(n4096 && aligned(n4096, 4096), "nothrow aligned new = %p", n4096);
    ::operator delete(n4096, std::align_val_t(4096));
}

static void test_nothrow_and_bad_alloc()
{
    std::puts("[cxx] nothrow new and std::bad_alloc");
    int *p = new (std::nothrow) int[1000];
    sink = p;
    EXPECT(p != nullptr, "new (nothrow) int[1000] returned nullptr");
    delete[] p;
    void *q = ::operator new(vsize_huge, std::nothrow);
    EXPECT(q == nullptr, "operator new(SIZE_MAX/2, nothrow) = %p, expected "
           "nullptr", q);
    bool threw = false;
    try {
        void *r = ::operator new(vsize_huge);
        std::fprintf(stderr, "operator new(SIZE_MAX/2) returned %p\n", r);
        ::operator delete(r);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw, "operator new(SIZE_MAX/2) did not throw std::bad_alloc");
    threw = false;
    try {
        std::vector<char> big;
        big.reserve(vsize_huge / 2);
    } catch (const std::bad_alloc &) {
        threw = true;
    } catch (const std::length_error &) {
        threw = true;
    }
    EXPECT(threw, "vector::reserve(huge) did not throw");
}

static void test_containers()
{
    std::puts("[cxx] vector to 10M, string concatenation, map with 100k");
    std::vector<int> v;
    for (int i = 0; i < 10000000; i++)
        v.push_back(i ^ 0x5a5a);
    long long sum = 0;
    bool ok = true;
    for (int i = 0; i < 10000000; i++) {
        if (v[static_cast<std::size_t>(i)] != (i ^ 0x5a5a))
            ok = false;
        sum += v[static_cast<std::size_t>(i)];
    }
    EXPECT(ok, "vector<int> contents corrupted after growth to 10M");
    EXPECT(malloc_usable_size(v.data()) >= v.size() * sizeof(int),
           "vector buffer usable size %zu < %zu", malloc_usable_size(v.data()),
           v.size() * sizeof(int));
    v.shrink_to_fit();
    v.resize(10);
    v.shrink_to_fit();
    EXPECT(v.size() == 10 && v[9] == (9 ^ 0x5a5a), "vector shrink wrong");
    (void)sum;

    std::string s;
    std::size_t expect_len = 0;
    for (int i = 0; i < 200000; i++) {
        s += std::to_string(i);
        s += ',';
        expect_len += std::to_string(i).size() + 1;
    }
    EXPECT(s.size() == expect_len, "string length %zu expected %zu", s.size(),
           expect_len);
    EXPECT(s.compare(0, 10, "0,1,2,3,4,") == 0, "string prefix wrong");
    EXPECT(s.substr(s.size() - 7) == "199999,", "string suffix wrong: %s",
           s.substr(s.size() - 7).c_str());
    std::vector<std::string> strs;
    for (int i = 0; i < 50000; i++)
        strs.push_back(std::string(static_cast<std::size_t>(i % 300), 'a' + i % 26));
    for (int i = 0; i < 50000; i++)
        EXPECT(strs[static_cast<std::size_t>(i)].size() == static_cast<std::size_t>(i % 300) &&
                   (i % 300 == 0 || strs[static_cast<std::size_t>(i)][0] == 'a' + i % 26),
               "string #%d corrupted", i);

    std::map<int, std::string> m;
    for (int i = 0; i < 100000; i++)
        m.emplace(i * 7919 % 100003, "v" + std::to_string(i));
    EXPECT(m.size() == 100000, "map size %zu", m.size());
    int checked = 0;
    for (int i = 0; i < 100000; i += 13) {
        auto it = m.find(i * 7919 % 100003);
        EXPECT(it != m.end() && it->second == "v" + std::to_string(i),
               "map entry for %d wrong", i);
        checked++;
    }
    for (int i = 0; i < 100000; i += 2)
        m.erase(i * 7919 % 100003);
    EXPECT(m.size() == 50000, "map size after erase %zu", m.size());

    std::unordered_map<std::string, std::vector<int>> um;
    for (int i = 0; i < 50000; i++)
        um["key" + std::to_string(i)].assign(static_cast<std::size_t>(i % 17), i);
    for (int i = 0; i < 50000; i += 17) {
        auto &vv = um["key" + std::to_string(i)];
        EXPECT(vv.size() == static_cast<std::size_t>(i % 17) &&
                   (vv.empty() || vv.back() == i), "unordered_map entry %d", i);
    }
    auto sp = std::make_shared<std::vector<double>>(100000, 1.5);
    auto up = std::make_unique<char[]>(1 << 20);
    up[(1 << 20) - 1] = 1;
    EXPECT((*sp)[99999] == 1.5, "shared_ptr vector corrupted");
}

int main()
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    bool hakmem = dlsym(RTLD_DEFAULT, "hakmem_version") != nullptr;
    const char *e = std::getenv("HAKMEM_TEST_EXPECT");
    if (e && *e && std::strcmp(e, "0") != 0 && !hakmem) {
        std::fprintf(stderr, "cxx_new_delete: HAKMEM_TEST_EXPECT=1 but hakmem "
                     "is not loaded\n");
        return 1;
    }
    std::printf("cxx_new_delete: allocator under test: %s\n",
                hakmem ? "hakmem" : "system malloc (glibc)");
    test_scalar_and_array();
    test_aligned_new();
    test_nothrow_and_bad_alloc();
    test_containers();
    if (failures) {
        std::fprintf(stderr, "cxx_new_delete: FAILED (%d)\n", failures);
        return 1;
    }
    std::puts("cxx_new_delete: PASSED");
    return 0;
}
