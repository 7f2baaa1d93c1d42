/*
 * The web console's side of the service: its static files under /console/ (from --console-dir,
 * with a strict Content-Security-Policy), the sessions an operator opens with a token or a
 * one-time login link (a cookie the browser keeps, a CSRF value the page keeps, a row in the
 * database), and the summaries its pages show (the fleet by state, attestations over time).
 * routes.c decides who may call what; this file only checks a session when routes.c asks it to.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "api.h"
#include "console.h"
#include "context.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "req.h"
#include "routes.h"

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/* What every console answer carries, its files' and its session's alike (and what every answer
 * of the service carries: nosniff, HSTS, from the transport: http.c). */
static void console_headers(rp_req_t *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

    evhttp_add_header(h, "Content-Security-Policy", CSP);
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
}

/* ---- static files ---- */

/* How a console file is opened: O_NONBLOCK, because a named pipe put in the directory would
 * otherwise block this open until some writer came, and hold the worker (and every connection it
 * serves) until then; it is no regular file, so the caller (rp_read_fd) refuses it. A regular file
 * reads as without the flag. */
#define CONSOLE_OPEN_FLAGS (O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)

/*
 * Without openat2 (a kernel before 5.6, or a system-call filter that does not know it: systemd-
 * nspawn's gives ENOSYS): the same rule, one component at a time from the directory. Each
 * directory is opened with O_NOFOLLOW | O_DIRECTORY and the file with O_NOFOLLOW, so that no
 * symbolic link is followed anywhere on the way, and "..", "." and empty components are refused:
 * nothing leads outside, whatever is swapped in meanwhile. -1 with errno.
 */
static int open_walk(int dir, const char *rel)
{
    char path[RP_CONSOLE_PATH_MAX + 1], *comp, *next;
    int at = dir, fd = -1;

    if (snprintf(path, sizeof(path), "%s", rel) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (comp = path; comp != NULL; comp = next) {
        next = strchr(comp, '/');
        if (next != NULL)
            *next++ = '\0';
        if (comp[0] == '\0' || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
            fd = -1;
            errno = ENOENT;
            break;
        }
        fd = openat(at, comp,
                    next != NULL ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                 : CONSOLE_OPEN_FLAGS);
        if (at != dir) {
            int saved = errno;
            close(at);
            errno = saved;
        }
        if (fd < 0)
            return -1;
        at = fd;
    }
    if (fd < 0 && at != dir)
        close(at);
    return fd;
}

/*
 * The console file at rel (checked by the caller), opened read-only beneath the console's
 * directory by the kernel itself: openat2() with RESOLVE_BENEATH (no "..", no absolute path gets
 * out), RESOLVE_NO_SYMLINKS (no symbolic link at all, inside or out: the console's files are
 * plain files) and RESOLVE_NO_MAGICLINKS (no /proc/self/fd/N), so no path checked here and then
 * swapped for a link before the open can lead outside; open_walk where openat2 is missing. -1
 * with errno.
 */
static int open_beneath(const char *root, const char *rel)
{
    static atomic_bool said_enosys;
    struct open_how how = {
        .flags = CONSOLE_OPEN_FLAGS,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd, saved;

    if (dir < 0)
        return -1;
    fd = (int)syscall(SYS_openat2, dir, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        if (!atomic_exchange(&said_enosys, true))
            rp_log_info("no openat2() here (Linux 5.6 or later, or a system-call filter that "
                        "does not know it): the console's files are opened one path component "
                        "at a time, following no link");
        fd = open_walk(dir, rel);
    }
    saved = errno;
    close(dir);
    errno = saved;
    return fd;
}

/* Reply with the console file at rel (checked by the caller), or 404: a file that is not there,
 * or not a regular file, or reached through a symbolic link, is the same. */
static void send_console_file(rp_req_t *r, const char *rel, const char *type)
{
    uint8_t *data = NULL;
    size_t len = 0;
    rp_err_t err = RP_ERR_NOT_FOUND;
    int fd = open_beneath(r->w->srv->console_dir, rel);

    /* Read whole, now, not mapped and sent as the client reads (rp_reply_stream): a mapped file
     * that shrinks meanwhile (an operator's cp over it while it is downloaded) faults the whole
     * service with SIGBUS. The console's files are small. */
    if (fd >= 0) {
        err = rp_read_fd(fd, RP_CONSOLE_FILE_MAX, &data, &len);
        close(fd);
    }
    if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO) {
        rp_reply_error(r, 404, "not_found", "no such file in the console");
        return;
    }
    if (err != RP_OK) {
        rp_log_error("console file %s: %s", rel, rp_strerror(err));
        rp_reply_error(r, 500, "internal", "cannot read the console's file");
        return;
    }
    /* Revalidated each time: an upgraded server's console is seen at once. */
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Cache-Control", "no-cache");
    rp_reply_bytes(r, 200, type, data, len);
    free(data);
}

void rp_h_console_file(rp_req_t *r)
{
    const char *const *segs = (const char *const *)r->parts + 1;
    int n = r->nparts - 1;
    const char *type, *last;
    char rel[RP_CONSOLE_PATH_MAX + 1] = "";

    console_headers(r);
    if (r->w->srv->console_dir[0] == '\0') {
        rp_reply_error(r, 404, "console_not_installed",
                       "the console's files are not installed on this server (--console-dir)");
        return;
    }
    if (n == 0) {
        /* "/console" would resolve the page's relative links against "/". */
        if (r->path[strlen(r->path) - 1] != '/') {
            evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location", "/console/");
            rp_reply_error(r, 308, "moved", "the console is at /console/");
            return;
        }
        send_console_file(r, "index.html", rp_console_type("index.html"));
        return;
    }
    if (!rp_console_path_ok(segs, n)) {
        rp_reply_error(r, 404, "not_found", "no such file in the console");
        return;
    }
    last = segs[n - 1];
    type = rp_console_type(last);
    if (type == NULL && strchr(last, '.') == NULL) {
        /* A page's own address (/console/login, /console/devices/D): the one page's script
         * reads it and shows that page. */
        send_console_file(r, "index.html", rp_console_type("index.html"));
        return;
    }
    if (type == NULL) {
        rp_reply_error(r, 404, "not_found", "no such file in the console");
        return;
    }
    for (int i = 0; i < n; i++) {
        strcat(rel, segs[i]); /* fits: rp_console_path_ok bounds the total */
        if (i + 1 < n)
            strcat(rel, "/");
    }
    send_console_file(r, rel, type);
}

/* ---- sessions ---- */

/* The CSRF value of a session: derived from its cookie, so that nothing more is stored, and
 * one-way, so that the page, which can read it, learns nothing of the cookie it cannot. */
static void csrf_of(const char *cookie, char out[RP_CSRF_LEN + 1])
{
    static const char label[] = "rampart console csrf";
    uint8_t buf[sizeof(label) + RP_SESSION_VALUE_LEN], mac[RP_SHA256_LEN];
    size_t n = strlen(cookie);

    memcpy(buf, label, sizeof(label)); /* the NUL separates the label from the cookie */
    memcpy(buf + sizeof(label), cookie, n);
    if (rp_sha256(buf, sizeof(label) + n, mac) != RP_OK ||
        rp_hex_encode(mac, sizeof(mac), out, RP_CSRF_LEN + 1) != RP_OK)
        memset(out, 0, RP_CSRF_LEN + 1); /* never matches a header: compared by length first */
    rp_wipe(buf, sizeof(buf));
    rp_wipe(mac, sizeof(mac));
}

/* The session cookie in the request's Cookie header (rp_cookie_get's answer). A request with two
 * Cookie headers is refused as one with the cookie twice in one header is: which of them holds
 * the session cannot be told (a browser sends one; evhttp_find_header would read the first only).
 */
static rp_err_t cookie_of(rp_req_t *r, char *out, size_t cap)
{
    const char *h = NULL;

    for (struct evkeyval *kv = evhttp_request_get_input_headers(r->req)->tqh_first; kv != NULL;
         kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, "Cookie") != 0)
            continue;
        if (h != NULL) {
            out[0] = '\0';
            return RP_ERR_MALFORMED;
        }
        h = kv->value;
    }
    return rp_cookie_get(h, RP_SESSION_COOKIE, out, cap);
}

/* The request's session cookie, checked for its form; false: none, or not one the service made. */
static bool session_cookie(rp_req_t *r, char out[RP_SESSION_VALUE_LEN + 1])
{
    if (cookie_of(r, out, RP_SESSION_VALUE_LEN + 1) != RP_OK ||
        !rp_console_secret_ok(out, RP_SESSION_PREFIX)) {
        rp_wipe(out, RP_SESSION_VALUE_LEN + 1);
        return false;
    }
    return true;
}

bool rp_console_has_cookie(rp_req_t *r)
{
    char v[RP_SESSION_VALUE_LEN + 1];
    rp_err_t err = cookie_of(r, v, sizeof(v));

    rp_wipe(v, sizeof(v));
    return err != RP_ERR_NOT_FOUND;
}

bool rp_console_session_auth(rp_req_t *r, bool need_csrf)
{
    const char *sent;
    char cookie[RP_SESSION_VALUE_LEN + 1], csrf[RP_CSRF_LEN + 1];
    uint8_t hash[RP_SHA256_LEN];
    int64_t expires = 0;
    rp_err_t err;
    bool csrf_ok;

    if (!session_cookie(r, cookie)) {
        rp_reply_error(r, 401, "unauthorized",
                       "a bearer token or the console's session cookie is required");
        return false;
    }
    err = rp_sha256(cookie, strlen(cookie), hash);
    if (err == RP_OK)
        err = rp_store_session_lookup(r->w->store, hash, (int64_t)time(NULL), &r->tok, &expires);
    rp_wipe(hash, sizeof(hash));
    if (err != RP_OK) {
        rp_wipe(cookie, sizeof(cookie));
        if (err == RP_ERR_NOT_FOUND)
            rp_reply_error(r, 401, "session_ended", "the console session has ended: log in again");
        else
            rp_reply_error(r, 500, "internal", "cannot check the session");
        return false;
    }
    if (need_csrf) {
        sent = evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-CSRF-Token");
        csrf_of(cookie, csrf);
        csrf_ok = sent != NULL && strlen(sent) == RP_CSRF_LEN && csrf[0] != '\0' &&
                  CRYPTO_memcmp(sent, csrf, RP_CSRF_LEN) == 0;
        rp_wipe(csrf, sizeof(csrf));
        if (!csrf_ok) {
            rp_wipe(cookie, sizeof(cookie));
            rp_reply_error(r, 403, "csrf", "csrf token missing or wrong");
            return false;
        }
    }
    rp_wipe(cookie, sizeof(cookie));
    r->by_session = true;
    r->session_expires = expires;
    /* The token's own expiry and last use, as for a bearer token. */
    return rp_route_token_current(r);
}

/* The session's answer: whose it is, until when, and its CSRF value. */
static json_t *session_json(rp_req_t *r, const char *cookie, int64_t expires)
{
    char csrf[RP_CSRF_LEN + 1];
    json_t *o;

    csrf_of(cookie, csrf);
    o = json_pack("{s:s?, s:s, s:I, s:s}", "tenant",
                  r->tok.tenant_id[0] != '\0' ? r->tok.tenant_id : NULL, "role",
                  rp_role_name(r->tok.role), "expires", (json_int_t)expires, "csrf", csrf);
    rp_wipe(csrf, sizeof(csrf));
    return o;
}

static void set_cookie(rp_req_t *r, const char *value, int64_t max_age)
{
    char h[160];

    snprintf(h, sizeof(h), "%s=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%lld",
             RP_SESSION_COOKIE, value, (long long)max_age);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie", h);
    rp_wipe(h, sizeof(h));
}

/* Whether the body is declared JSON: a page on another site can post a form to this route, but
 * not with this type (that takes a CORS preflight, which the service never grants), so nobody is
 * logged in to a session they did not open. */
static bool is_json(rp_req_t *r)
{
    const char *t = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    size_t n = strlen("application/json");

    return t != NULL && strncasecmp(t, "application/json", n) == 0 &&
           (t[n] == '\0' || t[n] == ';' || t[n] == ' ');
}

/* Whether the browser says another site's page sent the request (Sec-Fetch-Site: cross-site or
 * same-site; a page of the console itself is same-origin, and a client that is no browser sends
 * none). The type check (is_json) refuses such a post too; this says so before the body is read. */
static bool cross_site(rp_req_t *r)
{
    const char *s = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Sec-Fetch-Site");

    return s != NULL && (strcasecmp(s, "cross-site") == 0 || strcasecmp(s, "same-site") == 0);
}

/*
 * A login link is two rows of console_links: the link's own (its code's hash, the token it logs in
 * as) and its maker's (a hash derived from the link's, the token that made the link). A tenant's
 * link logs in as a new admin token, not as its maker: with the first row alone, revoking the
 * maker left its links working (found by review). Using a link takes both rows, and it logs in
 * only when both are there and each still names a token (a revoked one's row joins none). The
 * maker's hash is SHA-256 over a label and the link's hash: no code hashes to it, so the row opens
 * nothing by itself.
 */
static rp_err_t link_maker_hash(const uint8_t link[RP_SHA256_LEN], uint8_t out[RP_SHA256_LEN])
{
    static const char label[] = "rampart console link maker"; /* (its NUL included) */
    uint8_t in[sizeof(label) + RP_SHA256_LEN];
    rp_err_t err;

    memcpy(in, label, sizeof(label));
    memcpy(in + sizeof(label), link, RP_SHA256_LEN);
    err = rp_sha256(in, sizeof(in), out);
    rp_wipe(in, sizeof(in));
    return err;
}

/* Use the login link whose code's hash is hash. OUT: r->tok, the token it logs in as.
 * RP_ERR_NOT_FOUND: unknown, used, expired, or its token or its maker's is gone. */
static rp_err_t link_take(rp_req_t *r, const uint8_t hash[RP_SHA256_LEN], int64_t now)
{
    uint8_t maker_hash[RP_SHA256_LEN];
    rp_token_t maker;
    rp_err_t err = rp_store_link_take(r->w->store, hash, now, &r->tok), merr;

    /* The maker's row goes whatever became of the link's (never left to be found later). */
    merr = link_maker_hash(hash, maker_hash);
    if (merr == RP_OK)
        merr = rp_store_link_take(r->w->store, maker_hash, now, &maker);
    rp_wipe(maker_hash, sizeof(maker_hash));
    if (err == RP_OK && merr == RP_ERR_NOT_FOUND)
        rp_log_info("login link for token %s refused: the token that made it is gone", r->tok.id);
    return err != RP_OK ? err : merr;
}

/* POST /console/session {"token": T} or {"code": C}: a new session for the token, or for the
 * token a login link was made for. */
void rp_h_console_session_create(rp_req_t *r)
{
    static const char *const token_keys[] = {"token"}, *const code_keys[] = {"code"};
    json_t *body;
    const char *token, *code;
    char cookie[RP_SESSION_VALUE_LEN + 1];
    uint8_t raw[32], hash[RP_SHA256_LEN];
    int64_t now = (int64_t)time(NULL), expires;
    rp_err_t err;
    bool ok, unknown = false;

    console_headers(r);
    /* Refused before any credential is checked, so at no cost to the address's budget of failed
     * logins (rp_login_failed): another site's page could send these at will. */
    if (cross_site(r)) {
        rp_reply_error(r, 403, "forbidden", "a login from another site's page is refused");
        return;
    }
    if (!is_json(r)) {
        rp_reply_error(r, 415, "unsupported_media_type", "the body must be application/json");
        return;
    }
    if ((body = rp_req_json(r)) == NULL)
        return;
    token = rp_json_text(json_object_get(body, "token"), 256);
    code = rp_json_text(json_object_get(body, "code"), RP_LINK_CODE_LEN);
    if (!(rp_json_has_exactly(body, token_keys, 1) && token != NULL) &&
        !(rp_json_has_exactly(body, code_keys, 1) && code != NULL)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "the body is {\"token\": T} or {\"code\": C}");
        return;
    }
    if (token != NULL) {
        ok = rp_route_token_secret(r, token, &unknown);
        if (!ok && unknown)
            rp_login_failed(r);
    } else {
        err = rp_console_secret_ok(code, RP_LINK_PREFIX) ? rp_sha256(code, strlen(code), hash)
                                                         : RP_ERR_NOT_FOUND;
        if (err == RP_OK)
            err = link_take(r, hash, now);
        rp_wipe(hash, sizeof(hash));
        ok = err == RP_OK;
        if (err == RP_ERR_NOT_FOUND) {
            rp_login_failed(r);
            rp_reply_error(r, 401, "unauthorized",
                           "the login link is unknown, used already or expired: make another");
        } else if (err != RP_OK) {
            rp_reply_error(r, 500, "internal", "cannot check the login link");
        }
        ok = ok && rp_route_token_current(r);
    }
    /* (body held the secret: freed only now, its strings borrowed until here) */
    json_decref(body);
    if (!ok)
        return;
    expires = now + RP_SESSION_LIFETIME;
    if (r->tok.expires != 0 && r->tok.expires < expires)
        expires = r->tok.expires;
    err = RAND_priv_bytes(raw, sizeof(raw)) == 1 ? RP_OK : RP_ERR_CRYPTO;
    if (err == RP_OK) {
        strcpy(cookie, RP_SESSION_PREFIX);
        err = rp_hex_encode(raw, sizeof(raw), cookie + strlen(RP_SESSION_PREFIX),
                            sizeof(cookie) - strlen(RP_SESSION_PREFIX));
    }
    rp_wipe(raw, sizeof(raw));
    if (err == RP_OK)
        err = rp_sha256(cookie, strlen(cookie), hash);
    if (err == RP_OK && rp_store_console_purge(r->w->store, now) != RP_OK)
        rp_log_warn("cannot forget ended console sessions");
    if (err == RP_OK)
        err = rp_store_session_add(r->w->store, hash, r->tok.id, now, expires);
    rp_wipe(hash, sizeof(hash));
    if (err != RP_OK) {
        rp_wipe(cookie, sizeof(cookie));
        rp_reply_error(r, 500, "internal", "cannot open a session");
        return;
    }
    rp_log_info("console session opened for token %s (%s), until %lld", r->tok.id,
                code != NULL ? "login link" : "token", (long long)expires);
    set_cookie(r, cookie, expires - now);
    rp_reply_json(r, 200, session_json(r, cookie, expires));
    rp_wipe(cookie, sizeof(cookie));
}

/* GET /console/session: routes.c has checked the cookie. */
void rp_h_console_session_get(rp_req_t *r)
{
    char cookie[RP_SESSION_VALUE_LEN + 1];

    console_headers(r);
    if (!session_cookie(r, cookie)) { /* (checked already: cannot happen) */
        rp_reply_error(r, 401, "unauthorized", "no session");
        return;
    }
    rp_reply_json(r, 200, session_json(r, cookie, r->session_expires));
    rp_wipe(cookie, sizeof(cookie));
}

/* DELETE /console/session: the session ends here and now, and the browser forgets its cookie. */
void rp_h_console_session_delete(rp_req_t *r)
{
    char cookie[RP_SESSION_VALUE_LEN + 1];
    uint8_t hash[RP_SHA256_LEN];
    rp_err_t err = session_cookie(r, cookie) ? RP_OK : RP_ERR_NOT_FOUND;

    console_headers(r);
    if (err == RP_OK)
        err = rp_sha256(cookie, strlen(cookie), hash);
    rp_wipe(cookie, sizeof(cookie));
    if (err == RP_OK)
        err = rp_store_session_delete(r->w->store, hash);
    rp_wipe(hash, sizeof(hash));
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot end the session");
        return;
    }
    rp_log_info("console session of token %s ended", r->tok.id);
    set_cookie(r, "", 0);
    rp_reply_bytes(r, 204, "application/json", "", 0);
}

/* ---- one-time login links ---- */

/* The Host header, if it is a plain host[:port] (it goes into a link the caller is shown). */
static const char *request_host(rp_req_t *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Host");
    size_t n = h != NULL ? strlen(h) : 0;

    if (n == 0 || n > 255)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", h[i]) &&
              h[i] != '\0'))
            return NULL;
    return h;
}

/*
 * POST /api/v1/console/links [{"tenant": T}]: a login link, usable once within RP_LINK_LIFETIME.
 * Without a tenant it logs in as the calling token itself. With one (a system token, or an admin
 * of that tenant) it logs in as a new admin token of the tenant, made now and ending with the
 * session the link may open; its secret is never shown, and revoking it ends that session. It
 * records the caller as its maker (made_by): revoking the caller revokes it with its session, and
 * what it made in turn (its own tenant links' tokens); it makes no tokens (api.c).
 */
void rp_h_console_link_create(rp_req_t *r)
{
    static const char *const keys[] = {"tenant"};
    char code[RP_LINK_CODE_LEN + 1], secret[128], url[512];
    uint8_t raw[32], hash[RP_SHA256_LEN];
    int64_t now = (int64_t)time(NULL), expires = now + RP_LINK_LIFETIME, until;
    const char *tenant_id = NULL, *host = request_host(r);
    rp_token_t made = r->tok;
    rp_tenant_t tenant;
    size_t len = 0;
    json_t *body = NULL;
    rp_err_t err;

    if (rp_req_body(r, &len) == NULL)
        return;
    if (len > 0) {
        if ((body = rp_req_json(r)) == NULL)
            return;
        tenant_id = rp_json_text(json_object_get(body, "tenant"), RP_ID_SIZE - 1);
        if (json_object_size(body) > 0 &&
            (tenant_id == NULL || !rp_json_has_exactly(body, keys, 1))) {
            json_decref(body);
            rp_reply_error(r, 400, "invalid", "the body is {} or {\"tenant\": ID}");
            return;
        }
    }
    if (host == NULL) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "the request's Host header cannot be put in a link");
        return;
    }
    /* A link for the caller's own token opens a session bounded by that token only: made in a
     * session, it would open one that outlives this one, and so on for ever, without the token's
     * secret. A tenant's link makes a token that ends with this session (below). */
    if (r->by_session && tenant_id == NULL) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "made in a console session, a link names its tenant ({\"tenant\": ID}): "
                       "one for the session's own token would outlive the session");
        return;
    }
    /* Nothing the link opens outlives the caller: not its token (a token ending in an hour makes
     * no 8-hour session), nor, made in a session, that session. */
    until = expires + RP_SESSION_LIFETIME;
    if (r->tok.expires != 0 && r->tok.expires < until)
        until = r->tok.expires;
    if (r->by_session && r->session_expires < until)
        until = r->session_expires;
    if (until < expires)
        expires = until;
    if (tenant_id != NULL) {
        /* As routes.c answers for a path's tenant: another's does not exist. */
        err = r->tok.role == RP_ROLE_SYSTEM || strcmp(r->tok.tenant_id, tenant_id) == 0
                  ? rp_store_tenant_get(r->w->store, tenant_id, &tenant)
                  : RP_ERR_NOT_FOUND;
        if (err == RP_OK)
            err = rp_token_new(secret, sizeof(secret), hash);
        rp_wipe(secret, sizeof(secret));
        if (err == RP_OK)
            err = rp_store_token_add(r->w->store, tenant.id, RP_ROLE_ADMIN, hash, until, r->tok.id,
                                     &made);
        rp_wipe(hash, sizeof(hash));
        json_decref(body);
        if (err == RP_ERR_NOT_FOUND) {
            rp_reply_error(r, 404, "not_found", "no such tenant");
            return;
        }
        if (err != RP_OK) {
            rp_reply_error(r, 500, "internal", "cannot make the link's token");
            return;
        }
    } else {
        json_decref(body);
    }
    err = RAND_priv_bytes(raw, sizeof(raw)) == 1 ? RP_OK : RP_ERR_CRYPTO;
    if (err == RP_OK) {
        strcpy(code, RP_LINK_PREFIX);
        err = rp_hex_encode(raw, sizeof(raw), code + strlen(RP_LINK_PREFIX),
                            sizeof(code) - strlen(RP_LINK_PREFIX));
    }
    rp_wipe(raw, sizeof(raw));
    if (err == RP_OK)
        err = rp_sha256(code, strlen(code), hash);
    if (err == RP_OK)
        err = rp_store_link_add(r->w->store, hash, made.id, expires);
    if (err == RP_OK) /* its maker's row (link_take); without it the link logs no one in */
        err = link_maker_hash(hash, hash);
    if (err == RP_OK)
        err = rp_store_link_add(r->w->store, hash, r->tok.id, expires);
    rp_wipe(hash, sizeof(hash));
    if (err != RP_OK) {
        rp_wipe(code, sizeof(code));
        rp_reply_error(r, 500, "internal", "cannot make the link");
        return;
    }
    /* The code rides in the fragment: a browser never sends it, so no log ever holds it. */
    snprintf(url, sizeof(url), "https://%s/console/login#code=%s", host, code);
    rp_wipe(code, sizeof(code));
    rp_log_info("token %s made a console login link for token %s", r->tok.id, made.id);
    rp_reply_json(
        r, 201,
        json_pack("{s:s, s:I, s:s}", "url", url, "expires", (json_int_t)expires, "token", made.id));
    rp_wipe(url, sizeof(url));
}

/* ---- the fleet page's summaries ---- */

#define VERSIONS_MAX 1000
#define HISTOGRAM_MAX 1000

static void collect_version(void *ctx, const char *product, const char *component,
                            const char *version, int64_t devices)
{
    json_array_append_new(
        ctx, json_pack("{s:s?, s:s, s:s, s:I}", "product", product[0] != '\0' ? product : NULL,
                       "component", component, "version", version, "devices", (json_int_t)devices));
}

/* GET .../fleet: the tenant's devices by state, and the versions they run per product. */
void rp_h_fleet(rp_req_t *r)
{
    rp_fleet_counts_t c;
    json_t *versions = json_array();

    if (rp_store_fleet_counts(r->w->store, r->tenant.id, (int64_t)time(NULL), &c) != RP_OK ||
        rp_store_fleet_versions(r->w->store, r->tenant.id, VERSIONS_MAX, collect_version,
                                versions) != RP_OK) {
        json_decref(versions);
        rp_reply_error(r, 500, "internal", "cannot count the fleet");
        return;
    }
    rp_reply_json(
        r, 200,
        json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o}", "devices", "total",
                  (json_int_t)c.total, "attested", (json_int_t)c.attested, "cert_expiring",
                  (json_int_t)c.cert_expiring, "failed", (json_int_t)c.failed, "blocked",
                  (json_int_t)c.blocked, "quarantined", (json_int_t)c.quarantined, "never_seen",
                  (json_int_t)c.never_seen, "cert_expiring_counted_at",
                  c.cert_expiring_at != 0 ? rp_iso_time_json(c.cert_expiring_at) : json_null(),
                  "versions", versions));
}

/* ---- the fleet's summaries, counted in the background ---- */

#define SUMMARY_POLL_S 60 /* how often it looks for a count grown old */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rp_store_t *store;
    bool running, stopping;
} summaries = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *summaries_main(void *arg)
{
    struct timespec t;

    (void)arg;
    pthread_mutex_lock(&summaries.lock);
    while (!summaries.stopping) {
        size_t counted = 0;
        rp_err_t err;
        pthread_mutex_unlock(&summaries.lock);
        err = rp_store_fleet_summaries_refresh(summaries.store, (int64_t)time(NULL),
                                               RP_FLEET_SUMMARY_AGE, &counted);
        if (err != RP_OK)
            rp_log_error("the fleet's summaries: %s", rp_strerror(err));
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += SUMMARY_POLL_S;
        pthread_mutex_lock(&summaries.lock);
        while (!summaries.stopping &&
               pthread_cond_timedwait(&summaries.cond, &summaries.lock, &t) == 0)
            ;
    }
    pthread_mutex_unlock(&summaries.lock);
    return NULL;
}

rp_err_t rp_fleet_summaries_start(struct rp_server *srv)
{
    pthread_condattr_t ca;
    rp_err_t err;

    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&summaries.cond, &ca) != 0)
        return RP_ERR_IO;
    pthread_condattr_destroy(&ca);
    err = rp_server_store_open(srv, &summaries.store);
    if (err != RP_OK)
        return err;
    summaries.stopping = false;
    if (pthread_create(&summaries.thread, NULL, summaries_main, NULL) != 0) {
        rp_store_close(summaries.store);
        summaries.store = NULL;
        return RP_ERR_IO;
    }
    summaries.running = true;
    return RP_OK;
}

void rp_fleet_summaries_stop(void)
{
    if (!summaries.running)
        return;
    pthread_mutex_lock(&summaries.lock);
    summaries.stopping = true;
    pthread_cond_signal(&summaries.cond);
    pthread_mutex_unlock(&summaries.lock);
    pthread_join(summaries.thread, NULL);
    rp_store_close(summaries.store);
    summaries.store = NULL;
    summaries.running = false;
}

static bool query_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long n;

    if (v == NULL || *v == '\0' || *v == ' ')
        return false;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

/* GET .../attestations/histogram?since=S&step=s: passes and failures per step from since to now
 * (the last bucket holds now), at most HISTOGRAM_MAX buckets. */
void rp_h_attest_histogram(rp_req_t *r)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    int64_t now = (int64_t)time(NULL), since = now - 86400, step = 3600, n;
    int64_t *pass = NULL, *fail = NULL;
    json_t *jp, *jf;
    struct evkeyvalq q;
    bool ok = true;

    if (query != NULL) {
        ok = evhttp_parse_query_str(query, &q) == 0;
        for (struct evkeyval *kv = ok ? q.tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next) {
            if (strcmp(kv->key, "since") == 0)
                ok = ok && query_int(kv->value, 0, now, &since);
            else if (strcmp(kv->key, "step") == 0)
                ok = ok && query_int(kv->value, 1, 366 * 86400, &step);
            else
                ok = false;
        }
        evhttp_clear_headers(&q);
    }
    if (!ok) {
        rp_reply_error(r, 400, "invalid",
                       "the histogram takes ?since=UNIX_SECONDS (not in the future) and "
                       "?step=SECONDS (1 to %d)",
                       366 * 86400);
        return;
    }
    n = (now - since) / step + 1;
    if (n > HISTOGRAM_MAX) {
        rp_reply_error(r, 400, "invalid",
                       "that is %lld buckets, more than %d: a larger step or a later since",
                       (long long)n, HISTOGRAM_MAX);
        return;
    }
    pass = calloc((size_t)n, sizeof(*pass));
    fail = calloc((size_t)n, sizeof(*fail));
    if (pass == NULL || fail == NULL ||
        rp_store_attest_histogram(r->w->store, r->tenant.id, since, step, (int)n, pass, fail) !=
            RP_OK) {
        free(pass);
        free(fail);
        rp_reply_error(r, 500, "internal", "cannot count the attestations");
        return;
    }
    jp = json_array();
    jf = json_array();
    for (int64_t i = 0; i < n; i++) {
        json_array_append_new(jp, json_integer((json_int_t)pass[i]));
        json_array_append_new(jf, json_integer((json_int_t)fail[i]));
    }
    free(pass);
    free(fail);
    rp_reply_json(r, 200,
                  json_pack("{s:I, s:I, s:o, s:o}", "since", (json_int_t)since, "step",
                            (json_int_t)step, "pass", jp, "fail", jf));
}
