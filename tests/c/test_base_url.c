/*
 * test_base_url.c — the base_url check (base_url.c), as a table and end to end.
 *
 * The table: URLs that libcurl and a hand-written splitter read differently (userinfo that looks
 * like a host, '\', ';', '#', '?', zone ids, IPv4 shorthand, trailing dots, upper case...), each
 * refused or accepted as expected, with the URL requests are then built on.
 *
 * End to end: the program moves into a network namespace of its own (as root, or as the mapped
 * root of a user namespace when unprivileged user namespaces are allowed), brings its loopback
 * device up and gives it the non-loopback address 198.18.0.1 (the benchmarking range), and runs
 * a TCP listener there. Every bypass URL aimed at that listener goes through
 * ddstream_config_validate, ddstream_open and ddstream_validate and through DDSTREAM_BASE_URL:
 * each must be a DDSTREAM_E_CONFIG, and the listener must see no connection and no byte. A
 * control request with allow_insecure_http proves the listener does see what reaches it. The
 * namespace, and its address, go away with the process. When no namespace can be made the test
 * fails and says why: it never passes without having looked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base_url.h"
#include "check.h"
#include "config.h"
#include "ddstream.h"

#define API_KEY "base-url-test-api-key-0123456789"
#define APP_KEY "base-url-test-app-key-0123456789"
#define FOREIGN "198.18.0.1"

static void base_config(ddstream_config *cfg, const char *url) {
    ddstream_config_init(cfg);
    cfg->api_key = API_KEY;
    cfg->app_key = APP_KEY;
    cfg->query = "avg:system.cpu.user{*}";
    cfg->range_start = 1700000000;
    cfg->range_end = 1700003600;
    cfg->base_url = url;
    cfg->max_retries = 0;
    cfg->connect_timeout_ms = 2000;
    cfg->request_timeout_ms = 2000;
}

/* ---------------------------------------------------------------------------------------------
 * The table.
 */

typedef struct url_case {
    const char *url;
    int allow_insecure_http;
    const char *normalized; /* accepted: the URL requests are built on; NULL: refused... */
    const char *why;        /* ...with this in the message */
} url_case;

static const url_case cases[] = {
    /* The two of the report. */
    {"http://127.0.0.1:80@example.com:8080", 0, NULL, "credentials"},
    {"https://user:pass@127.0.0.1", 0, NULL, "credentials"},
    /* Userinfo in every disguise; refused with https too, and with allow_insecure_http. */
    {"http://user@127.0.0.1", 0, NULL, "credentials"},
    {"http://:@127.0.0.1", 0, NULL, "credentials"},
    {"http://;o@127.0.0.1", 0, NULL, "credentials"},
    {"http://127.0.0.1;x@example.com", 0, NULL, "credentials"},
    {"http://127.0.0.1%2f@example.com", 0, NULL, "credentials"},
    {"http://127.0.0.1%40example.com", 0, NULL, "without '%'"},
    {"http://%31", 1, NULL, "without '%'"},         /* "1", written back: 0.0.0.1 */
    {"http://%31%32%37.1", 0, NULL, "without '%'"}, /* "127.1", written back: 127.0.0.1 */
    {"http://x%2e127.0.0.1:80", 0, NULL, "without '%'"},
    {"http://localhost:80@example.com", 1, NULL, "credentials"},
    {"https://127.0.0.1@example.com", 0, NULL, "credentials"},
    {"http://127.0.0.1\\@example.com", 0, NULL, "backslash"},
    {"http:\\\\127.0.0.1", 0, NULL, "backslash"},
    /* Query and fragment, empty ones too (libcurl drops an empty fragment). */
    {"http://example.com?@127.0.0.1", 0, NULL, "query"},
    {"http://example.com#@127.0.0.1", 0, NULL, "fragment"},
    {"http://127.0.0.1/?", 0, NULL, "query"},
    {"http://127.0.0.1/#", 0, NULL, "fragment"},
    {"https://api.datadoghq.com/?x=1", 0, NULL, "query"},
    /* Zone ids, even on ::1. */
    {"http://[::1%25lo]", 0, NULL, "zone id"},
    {"http://[fe80::1%25lo]:8080", 1, NULL, "zone id"},
    /* Not loopback, however it is written. */
    {"http://example.com", 0, NULL, "non-loopback host"},
    {"http://127.0.0.1.example.com", 0, NULL, "non-loopback host"},
    {"http://127.0.0.1./", 0, NULL, "non-loopback host"},
    {"http://localhost./", 0, NULL, "non-loopback host"},
    {"http://foo.localhost", 0, NULL, "non-loopback host"},
    {"http://0/", 0, NULL, "non-loopback host"},
    {"http://0.0.0.0:80", 0, NULL, "non-loopback host"},
    {"http://128.0.0.1", 0, NULL, "non-loopback host"},
    {"http://[::2]", 0, NULL, "non-loopback host"},
    {"http://[::ffff:10.0.0.1]", 0, NULL, "non-loopback host"},
    {"http://198.18.0.1:80/127.0.0.1", 0, NULL, "non-loopback host"},
    {"http://3323068417", 0, NULL, "non-loopback host"}, /* 198.18.0.1 as one number */
    {"http://%31%39%38.18.0.1", 0, NULL, "without '%'"},
    {"HTTP://EXAMPLE.COM", 0, NULL, "non-loopback host"},
    /* Malformed. */
    {"http:/127.0.0.1", 0, NULL, "followed by the host"},
    {"http:///127.0.0.1", 0, NULL, "followed by the host"},
    {"http:127.0.0.1", 0, NULL, "followed by the host"},
    {"//127.0.0.1", 0, NULL, "followed by the host"},
    {"127.0.0.1:8080", 0, NULL, "followed by the host"},
    {"ftp://127.0.0.1", 0, NULL, "not ftp://"},
    {"file:///etc/passwd", 0, NULL, "followed by the host"},
    {"gopher://127.0.0.1:70", 0, NULL, "not gopher://"},
    {"http://", 0, NULL, "no host"},
    {"http://:80", 0, NULL, "no host"},
    {"http://127.0.0.1:99999", 0, NULL, "not a valid URL"},
    {"http://127.0.0.1:80:90", 0, NULL, "not a valid URL"},
    {"http://[::1", 0, NULL, "not a valid URL"},
    {"http://[::1]x", 0, NULL, "not a valid URL"},
    {"http://127.0.0.1%00.example.com", 0, NULL, "without '%'"},
    {"http://a b", 0, NULL, "spaces"},
    {" http://127.0.0.1", 0, NULL, "spaces"},
    {"http://127.0.0.1\t", 0, NULL, "spaces"},
    {"http://127.0.0.1\r\nX-Injected: 1", 0, NULL, "spaces"},
    {"", 0, NULL, "empty"},
    /* Accepted, and what requests are built on: libcurl's own rendering. */
    {"http://127.0.0.1:8126", 0, "http://127.0.0.1:8126", NULL},
    {"http://127.0.0.1:8126/", 0, "http://127.0.0.1:8126", NULL},
    {"http://127.0.0.1:8126//", 0, "http://127.0.0.1:8126", NULL},
    {"http://127.0.0.1:8126/prefix/", 0, "http://127.0.0.1:8126/prefix", NULL},
    {"http://127.255.255.254", 0, "http://127.255.255.254", NULL},
    {"http://127.1:9", 0, "http://127.0.0.1:9", NULL},
    {"http://0x7f.0.0.1", 0, "http://127.0.0.1", NULL},
    {"http://0177.0.0.1", 0, "http://127.0.0.1", NULL},
    {"http://2130706433", 0, "http://127.0.0.1", NULL},
    {"http://127.0.0.1/a%20b", 0, "http://127.0.0.1/a%20b", NULL}, /* '%' in the path is fine */
    {"http://localhost:1", 0, "http://localhost:1", NULL},
    {"HTTP://LocalHost:1/", 0, "http://LocalHost:1", NULL},
    {"http://[::1]:5", 0, "http://[::1]:5", NULL},
    {"http://[0:0:0:0:0:0:0:1]", 0, "http://[::1]", NULL},
    {"http://[::ffff:127.0.0.1]", 0, "http://[::ffff:127.0.0.1]", NULL},
    {"https://api.datadoghq.com", 0, "https://api.datadoghq.com", NULL},
    {"HTTPS://api.datadoghq.eu/", 0, "https://api.datadoghq.eu", NULL},
    {"https://api.datadoghq.com.", 0, "https://api.datadoghq.com.", NULL},
    {"https://[2001:db8::1]:443", 0, "https://[2001:db8::1]:443", NULL},
    {"http://example.com:8080", 1, "http://example.com:8080", NULL},
};

static void test_table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const url_case *c = &cases[i];
        ddstream_config cfg;
        base_config(&cfg, c->url);
        cfg.allow_insecure_http = c->allow_insecure_http;
        dds_settings s;
        ddstream_error err;
        memset(&err, 0, sizeof err);
        ddstream_status st = dds_settings_load(&cfg, &s, &err);
        if (c->normalized) {
            CHECK_MSG(st == DDSTREAM_OK, "'%s' refused: %s", c->url, err.message);
            if (st == DDSTREAM_OK) {
                CHECK_MSG(strcmp(s.base_url, c->normalized) == 0, "'%s' became '%s', expected '%s'",
                          c->url, s.base_url, c->normalized);
                dds_settings_free(&s);
            }
        } else {
            CHECK_MSG(st == DDSTREAM_E_CONFIG, "'%s' gave status %d, expected a config error",
                      c->url, (int)st);
            CHECK_MSG(strstr(err.message, c->why) != NULL, "'%s': message '%s' lacks '%s'", c->url,
                      err.message, c->why);
            CHECK_MSG(strstr(err.message, "base_url") != NULL, "'%s': message '%s' names no field",
                      c->url, err.message);
            /* What came before the host may be a password: never quoted. */
            CHECK_MSG(strstr(err.message, "pass") == NULL && strstr(err.message, "user") == NULL,
                      "'%s': message '%s' quotes the userinfo", c->url, err.message);
            if (st == DDSTREAM_OK) dds_settings_free(&s);
        }
    }
}

static void test_loopback_hosts(void) {
    const char *yes[] = {"localhost",       "LOCALHOST", "127.0.0.1",          "127.0.0.0",
                         "127.255.255.255", "[::1]",     "[::ffff:127.0.0.1]", "[0:0:0:0:0:0:0:1]"};
    const char *no[] = {"localhost.",
                        "localhost.localdomain",
                        "127.0.0.1.",
                        "127.1",
                        "0x7f.0.0.1",
                        "2130706433",
                        "1.2.3.4",
                        "::1",
                        "[::1",
                        "[fe80::1]",
                        "[::ffff:1.2.3.4]",
                        "[]",
                        "",
                        "127.0.0.1 ",
                        "[::1]x",
                        "198.18.0.1",
                        "126.255.255.255"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK_MSG(dds_host_is_loopback(yes[i]), "'%s' is loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK_MSG(!dds_host_is_loopback(no[i]), "'%s' is not loopback", no[i]);
    CHECK(!dds_host_is_loopback(NULL));
}

/* ---------------------------------------------------------------------------------------------
 * End to end, against a listener on a non-loopback address.
 */

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A network namespace of our own: as root directly, else inside a user namespace whose root is
 * us. Single-threaded at this point, as unshare(CLONE_NEWUSER) requires. */
static int enter_private_network(char *why, size_t cap) {
    if (unshare(CLONE_NEWNET) == 0) return 0;
    int as_root = errno;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
        snprintf(why, cap,
                 "unshare(CLONE_NEWNET): %s; unshare(CLONE_NEWUSER|CLONE_NEWNET): %s "
                 "(run as root, or allow unprivileged user namespaces)",
                 strerror(as_root), strerror(errno));
        return -1;
    }
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) != 0) {
        snprintf(why, cap, "writing /proc/self/uid_map: %s", strerror(errno));
        return -1;
    }
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) != 0) {
        snprintf(why, cap, "writing /proc/self/gid_map: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* lo up, and FOREIGN on it as the alias lo:1 (the namespace's own lo, nobody else's). */
static int add_foreign_address(char *why, size_t cap) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        snprintf(why, cap, "socket: %s", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    if (rc != 0) {
        snprintf(why, cap, "bringing lo up: %s", strerror(errno));
        close(fd);
        return -1;
    }
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo:1");
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, FOREIGN, &sin->sin_addr);
    if (ioctl(fd, SIOCSIFADDR, &ifr) != 0) {
        snprintf(why, cap, "adding %s to lo: %s", FOREIGN, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

typedef struct listener {
    int fd;
    int port;
    atomic_int stop;
    atomic_int connections;
    atomic_long bytes;
    char first[512]; /* the start of what the first connection sent */
    pthread_t thread;
} listener;

static void *listen_loop(void *arg) {
    listener *l = arg;
    while (!atomic_load(&l->stop)) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(l->fd, NULL, NULL);
        if (c < 0) continue;
        int nth = atomic_fetch_add(&l->connections, 1);
        size_t got = 0;
        for (;;) {
            struct pollfd q = {.fd = c, .events = POLLIN};
            if (poll(&q, 1, 300) <= 0) break; /* a request's headers come at once */
            char buf[1024];
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            atomic_fetch_add(&l->bytes, (long)n);
            if (nth == 0 && got < sizeof l->first - 1) {
                size_t take =
                    (size_t)n < sizeof l->first - 1 - got ? (size_t)n : sizeof l->first - 1 - got;
                memcpy(l->first + got, buf, take);
                got += take;
            }
        }
        close(c); /* no answer: the client sees the connection end */
    }
    return NULL;
}

static int listener_start(listener *l, char *why, size_t cap) {
    memset(l, 0, sizeof *l);
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, FOREIGN, &a.sin_addr);
    socklen_t len = sizeof a;
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(l->fd, 16) != 0 ||
        getsockname(l->fd, (struct sockaddr *)&a, &len) != 0) {
        snprintf(why, cap, "listening on %s: %s", FOREIGN, strerror(errno));
        return -1;
    }
    l->port = ntohs(a.sin_port);
    pthread_create(&l->thread, NULL, listen_loop, l);
    return 0;
}

static void listener_stop(listener *l) {
    usleep(300 * 1000); /* a connection still on its way would show by now */
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    close(l->fd);
}

/* Each aimed at FOREIGN:%d; %d is the listener's port. */
static const char *const bypasses[] = {
    "http://127.0.0.1:80@" FOREIGN ":%d",
    "http://127.0.0.1@" FOREIGN ":%d",
    "http://localhost:%d@" FOREIGN ":%d",
    "http://127.0.0.1;x@" FOREIGN ":%d",
    "http://127.0.0.1%%2f@" FOREIGN ":%d",
    "http://127.0.0.1\\@" FOREIGN ":%d",
    "http://" FOREIGN ":%d#@127.0.0.1",
    "http://" FOREIGN ":%d?@127.0.0.1",
    "http://" FOREIGN ":%d/127.0.0.1",
    "http://" FOREIGN ":%d",
    "HTTP://" FOREIGN ":%d/",
    "http:/" FOREIGN ":%d",
    "http://3323068417:%d",
    "http://0xc6.0x12.0.1:%d",
    "http://198.18.1:%d",
    "http://[::ffff:" FOREIGN "]:%d",
    "http://" FOREIGN ".:%d",
    "https://user:pass@" FOREIGN ":%d",
};

static void test_nothing_reaches_a_foreign_host(void) {
    char why[512];
    if (enter_private_network(why, sizeof why) != 0 || add_foreign_address(why, sizeof why) != 0) {
        CHECK_MSG(0,
                  "cannot set up the non-loopback test address, so the bypass test cannot run: %s",
                  why);
        return;
    }
    listener l;
    if (listener_start(&l, why, sizeof why) != 0) {
        CHECK_MSG(0, "%s", why);
        return;
    }
    unsetenv("DDSTREAM_BASE_URL");
    for (size_t i = 0; i < sizeof bypasses / sizeof bypasses[0]; i++) {
        char url[256];
        snprintf(url, sizeof url, bypasses[i], l.port, l.port);
        ddstream_config cfg;
        base_config(&cfg, url);
        ddstream_error err;
        CHECK_MSG(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG,
                  "ddstream_config_validate accepted '%s'", url);
        ddstream_stream *stream = NULL;
        ddstream_status st = ddstream_open(&cfg, &stream, &err);
        CHECK_MSG(st == DDSTREAM_E_CONFIG, "ddstream_open('%s') gave %d", url, (int)st);
        if (stream) {
            ddstream_batch *b = NULL;
            ddstream_next(stream, 3000, &b, &err); /* would connect, if opening had let it */
            ddstream_batch_free(b);
            ddstream_close(stream);
        }
        st = ddstream_validate(&cfg, &err);
        CHECK_MSG(st == DDSTREAM_E_CONFIG, "ddstream_validate('%s') gave %d", url, (int)st);
        CHECK_MSG(strstr(err.message, "pass") == NULL, "'%s': message quotes the password", url);
        /* The same URL from the environment. */
        setenv("DDSTREAM_BASE_URL", url, 1);
        cfg.base_url = NULL;
        st = ddstream_validate(&cfg, &err);
        CHECK_MSG(st == DDSTREAM_E_CONFIG, "ddstream_validate(DDSTREAM_BASE_URL='%s') gave %d", url,
                  (int)st);
        unsetenv("DDSTREAM_BASE_URL");
    }
    usleep(300 * 1000);
    CHECK_MSG(atomic_load(&l.connections) == 0, "%d connection(s) reached " FOREIGN,
              atomic_load(&l.connections));
    CHECK_MSG(atomic_load(&l.bytes) == 0, "%ld byte(s) reached " FOREIGN, atomic_load(&l.bytes));

    /* The control: with allow_insecure_http the same listener sees the request and its key. A
     * listener that could not see anything would have passed the checks above. */
    char url[128];
    snprintf(url, sizeof url, "http://" FOREIGN ":%d", l.port);
    ddstream_config cfg;
    base_config(&cfg, url);
    cfg.allow_insecure_http = 1;
    ddstream_error err;
    ddstream_status st = ddstream_validate(&cfg, &err);
    CHECK_MSG(st != DDSTREAM_OK && st != DDSTREAM_E_CONFIG, "control request: status %d (%s)",
              (int)st, err.message);
    listener_stop(&l);
    CHECK_MSG(atomic_load(&l.connections) >= 1, "the control request did not reach the listener");
    CHECK_MSG(strstr(l.first, "GET /api/v1/validate") != NULL && strstr(l.first, API_KEY) != NULL,
              "the listener did not see the control request: '%.200s'", l.first);
}

int main(void) {
    test_table();
    test_loopback_hosts();
    test_nothing_reaches_a_foreign_host(); /* last: it moves the process to its own network */
    return check_report("test_base_url");
}
