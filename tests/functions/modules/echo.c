/* A CGI (WAGI) test function in C: echoes the request, and misbehaves on demand (see tests/functions). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
void *volatile kept[4096];

__attribute__((import_module("madbase"), import_name("http_request")))
int32_t madbase_http_request(const char *req, int32_t len);
__attribute__((import_module("madbase"), import_name("http_response_read")))
int32_t madbase_http_response_read(char *buf, int32_t len);

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v ? v : "";
}

static unsigned char *read_body(size_t *n) {
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) { cap *= 2; buf = realloc(buf, cap); }
    }
    *n = len;
    return buf;
}

static void echo_headers(void) {
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "HTTP_", 5) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        printf("X-Echo-");
        for (const char *p = *e + 5; p < eq; p++) putchar(*p == '_' ? '-' : tolower((unsigned char)*p));
        printf(": %s\r\n", eq + 1);
    }
}

static const char *query_value(const char *key, char *out, size_t outlen) {
    const char *q = env("QUERY_STRING");
    size_t klen = strlen(key);
    while (*q) {
        if (strncmp(q, key, klen) == 0 && q[klen] == '=') {
            const char *v = q + klen + 1;
            size_t n = strcspn(v, "&");
            if (n >= outlen) n = outlen - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return out;
        }
        q += strcspn(q, "&");
        if (*q == '&') q++;
    }
    return NULL;
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(void) {
    const char *path = env("PATH_INFO");
    char buf[2048];
    if (strcmp(env("REQUEST_METHOD"), "OPTIONS") == 0) {  /* answers its own CORS preflight, as Supabase's example */
        printf("Status: 200\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: POST, GET, OPTIONS\r\n"
               "Access-Control-Allow-Headers: authorization, x-client-info, apikey, content-type\r\n\r\nok");
        return 0;
    }
    if (strcmp(path, "/status") == 0) {
        const char *code = query_value("code", buf, sizeof buf);
        printf("Status: %s\r\nContent-Type: application/json\r\n\r\n{\"error\":\"as asked\"}", code ? code : "418");
        return 0;
    }
    if (strcmp(path, "/spin") == 0) {
        volatile uint64_t x = 0;
        for (;;) x++;
    }
    if (strcmp(path, "/busy") == 0) {  /* burns wall clock while calling into the host (clock_gettime) */
        long start = now_ms();
        while (now_ms() - start < 60000) {}
        printf("Status: 200\r\n\r\nslept");
        return 0;
    }
    if (strcmp(path, "/sleep") == 0) {  /* blocked in a host call (WASI poll_oneoff): no epoch check runs */
        sleep(5);
        printf("Status: 200\r\n\r\nwoke");
        return 0;
    }
    if (strcmp(path, "/eat") == 0) {
        size_t total = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) { fprintf(stderr, "malloc failed after %zu MiB\n", total >> 20); abort(); }
            memset(p, 1, 1 << 20);
            kept[(total >> 20) % 4096] = p;  /* keep it: an unused allocation is optimised away */
            total += 1 << 20;
        }
    }
    if (strcmp(path, "/crash") == 0) {
        fprintf(stderr, "about to crash\n");
        __builtin_trap();
    }
    if (strcmp(path, "/exit") == 0) {
        exit(3);
    }
    if (strcmp(path, "/garbage") == 0) {
        printf("this is not a CGI response");
        return 0;
    }
    if (strcmp(path, "/env") == 0) {
        const char *name = query_value("name", buf, sizeof buf);
        const char *v = name ? getenv(name) : NULL;
        printf("Status: %d\r\nContent-Type: text/plain\r\n\r\n%s", v ? 200 : 404, v ? v : "");
        return 0;
    }
    if (strcmp(path, "/sandbox") == 0) {
        FILE *f = fopen("/etc/passwd", "r");
        FILE *g = fopen("/tmp/madbase-fn-probe", "w");
        FILE *h = fopen("./x", "r");
        printf("Content-Type: application/json\r\n\r\n{\"read_etc_passwd\":%s,\"write_tmp\":%s,\"read_cwd\":%s}",
               f ? "true" : "false", g ? "true" : "false", h ? "true" : "false");
        return 0;
    }
    if (strcmp(path, "/fetch") == 0) {
        char url[1024];
        if (!query_value("url", url, sizeof url)) { printf("Status: 400\r\n\r\nno url"); return 0; }
        char req[1200];
        int n = snprintf(req, sizeof req, "GET %s\r\nx-from: wasm\r\n\r\n", url);
        int32_t len = madbase_http_request(req, n);
        if (len < 0) {
            printf("Status: 502\r\nContent-Type: application/json\r\n\r\n{\"fetch_error\":%d}", len);
            return 0;
        }
        char *resp = malloc(len + 1);
        int32_t got = 0, r;
        while (got < len && (r = madbase_http_response_read(resp + got, len - got)) > 0) got += r;
        resp[got] = 0;
        char *body = strstr(resp, "\r\n\r\n");
        int status = atoi(resp + 8);
        printf("Status: 200\r\nContent-Type: text/plain\r\nX-Upstream-Status: %d\r\n\r\n%s", status, body ? body + 4 : "");
        return 0;
    }
    /* echo */
    size_t n;
    unsigned char *body = read_body(&n);
    fprintf(stderr, "echo %s %s\n", env("REQUEST_METHOD"), path);
    const char *ct = getenv("CONTENT_TYPE");
    printf("Status: 200\r\n");
    if (getenv("HTTP_ORIGIN")) printf("Access-Control-Allow-Origin: *\r\n");
    if (ct) printf("Content-Type: %s\r\n", ct);
    printf("X-Method: %s\r\nX-Path-Info: %s\r\nX-Query: %s\r\nX-Script-Name: %s\r\n", env("REQUEST_METHOD"), path,
           env("QUERY_STRING"), env("SCRIPT_NAME"));
    echo_headers();
    printf("\r\n");
    fwrite(body, 1, n, stdout);
    return 0;
}
