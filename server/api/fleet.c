/*
 * The fleet, the operator API's side of it (/api/v1/tenants/T/...): products and their device
 * groups, group membership and settings, and deployments (which images a group should run, their
 * progress, pause, resume and stop). The images deployed are images.c's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "context.h"
#include "fleet.h"
#include "images.h"
#include "names.h"
#include "paging.h"
#include "rampart/log.h"
#include "rampart/update_state.h"
#include "req.h"
#include "routes.h"

/* ---- products, device groups, membership ---- */

static json_t *product_json(const rp_product_t *p)
{
    return json_pack("{s:s, s:s, s:o}", "id", p->id, "name", p->name, "created",
                     rp_iso_time_json(p->created));
}

static void collect_product(void *ctx, const rp_product_t *p)
{
    json_array_append_new(ctx, product_json(p));
}

static json_t *group_json(const rp_group_t *g)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:b}", "id", g->id, "product", g->product_id,
                     "name", g->name, "allow_unknown_images", g->allow_unknown_images, "created",
                     rp_iso_time_json(g->created), "crash_capture", g->crash_capture);
}

static void collect_group(void *ctx, const rp_group_t *g, int64_t ndevices)
{
    json_t *o = group_json(g);

    json_object_set_new(o, "devices", json_integer(ndevices));
    json_array_append_new(ctx, o);
}

/* A POST body's "name"; on failure a 400 was sent and NULL returned (body is then freed). */
static const char *body_name(rp_req_t *r, json_t *body)
{
    const char *why, *name = rp_name_json(json_object_get(body, "name"), &why);

    if (name != NULL)
        return name;
    json_decref(body);
    rp_reply_error(r, 400, "invalid", "\"name\" %s", why);
    return NULL;
}

static bool find_product(rp_req_t *r, const rp_tenant_t *tenant, const char *id_or_name,
                         rp_product_t *p)
{
    rp_err_t err = rp_store_product_find(r->w->store, tenant->id, id_or_name, p);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such product in this tenant");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the product");
    return err == RP_OK;
}

static bool find_group(rp_req_t *r, const rp_product_t *p, const char *id_or_name, rp_group_t *g)
{
    rp_err_t err = rp_store_group_find(r->w->store, p, id_or_name, g);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such device group in product %s", p->name);
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the device group");
    return err == RP_OK;
}

static void collect_member(void *ctx, const char *device_id)
{
    json_array_append_new(ctx, json_string(device_id));
}

/* POST .../groups/G/devices {"device_ids": [...]}: put the tenant's devices in the group. */
static void assign_devices(rp_req_t *r, const rp_group_t *g)
{
    json_t *body, *ids = rp_req_device_ids(r, &body), *v, *assigned, *refused;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err = RP_OK;
    size_t i;

    if (ids == NULL)
        return;
    assigned = json_array();
    refused = json_array();
    json_array_foreach(ids, i, v)
    {
        err = rp_store_device_assign(r->w->store, g, json_string_value(v), now);
        if (err == RP_OK)
            json_array_append(assigned, v);
        else if (err == RP_ERR_NOT_FOUND)
            json_array_append(refused, v);
        else
            break;
    }
    json_decref(body);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        json_decref(assigned);
        json_decref(refused);
        rp_reply_error(r, 500, "internal", "cannot assign devices");
        return;
    }
    if (json_array_size(refused) > 0) {
        rp_reply_json(r, 404,
                      json_pack("{s:s, s:s, s:o, s:o}", "error", "not_found", "message",
                                "some devices are not this tenant's", "assigned", assigned,
                                "refused", refused));
        return;
    }
    json_decref(refused);
    rp_log_info("tenant %s: %zu device(s) assigned to group %s", g->tenant_id,
                json_array_size(assigned), g->id);
    rp_reply_json(r, 200, json_pack("{s:s, s:o}", "group", g->id, "assigned", assigned));
}

void rp_h_products_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_product_list(r->w->store, r->tenant.id, &pg, collect_product, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list products");
        return;
    }
    rp_page_reply(r, "products", list, &pg, "id");
}

void rp_h_product_create(rp_req_t *r)
{
    json_t *body = rp_req_json(r);
    const char *name;
    rp_product_t p;
    rp_err_t err;

    if (body == NULL || (name = body_name(r, body)) == NULL)
        return;
    err = rp_store_product_create(r->w->store, r->tenant.id, name, &p);
    json_decref(body);
    if (err == RP_ERR_EXISTS) {
        rp_reply_error(r, 409, "conflict", "the tenant has a product of that name");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the product");
        return;
    }
    rp_log_info("tenant %s: product %s (%s) created", r->tenant.id, p.id, p.name);
    rp_reply_json(r, 201, product_json(&p));
}

/* The product's groups, in out (taken) as "groups" (pg paged: a page of them, and "next_after");
 * on failure a 500 was sent. */
static void reply_groups(rp_req_t *r, const rp_product_t *p, json_t *out, const rp_page_t *pg)
{
    json_t *list = json_array();

    if (rp_store_group_list(r->w->store, p, pg, collect_group, list) != RP_OK) {
        json_decref(list);
        json_decref(out);
        rp_reply_error(r, 500, "internal", "cannot list groups");
        return;
    }
    if (pg != NULL && !rp_page_whole_fits(r, list, pg, "groups")) {
        json_decref(list);
        json_decref(out);
        return;
    }
    if (pg != NULL && pg->paged)
        json_object_set_new(out, "next_after", rp_page_next(list, pg, "id"));
    json_object_set_new(out, "groups", list);
    rp_reply_json(r, 200, out);
}

void rp_h_product_get(rp_req_t *r)
{
    rp_product_t p;
    rp_page_t whole; /* its groups, unpaged: at most RP_PAGE_WHOLE_MAX */

    if (rp_page_parse(NULL, &whole) && find_product(r, &r->tenant, rp_req_param(r, "product"), &p))
        reply_groups(r, &p, product_json(&p), &whole);
}

void rp_h_groups_list(rp_req_t *r)
{
    rp_product_t p;
    rp_page_t pg;

    if (rp_page_request(r, &pg) && find_product(r, &r->tenant, rp_req_param(r, "product"), &p))
        reply_groups(r, &p, json_object(), &pg);
}

/* A body's optional boolean key: its value into *out (unchanged when absent); false: 400 sent and
 * body freed. */
static bool body_bool(rp_req_t *r, json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);

    if (v == NULL)
        return true;
    if (!json_is_boolean(v)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "\"%s\" is true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

void rp_h_group_create(rp_req_t *r)
{
    json_t *body;
    const char *name;
    rp_product_t p;
    rp_group_t g;
    bool allow = false, capture = true;
    rp_err_t err;

    if (!find_product(r, &r->tenant, rp_req_param(r, "product"), &p) ||
        (body = rp_req_json(r)) == NULL || (name = body_name(r, body)) == NULL ||
        !body_bool(r, body, "allow_unknown_images", &allow) ||
        !body_bool(r, body, "crash_capture", &capture))
        return;
    /* Such a group lets its devices pass attestation with images the tenant never uploaded: as
     * much an admin's decision as which keys sign images. */
    if (allow && !rp_route_require(r, RP_ROLE_ADMIN, "a group that allows unknown images")) {
        json_decref(body);
        return;
    }
    /* A group made with capture off never has it on, even for a moment. */
    err = rp_store_group_begin(r->w->store);
    if (err == RP_OK) {
        err = rp_store_group_create(r->w->store, &p, name, allow, &g);
        if (err == RP_OK && !capture)
            err = rp_store_group_set_crash_capture(r->w->store, &g, false);
        err = rp_store_group_end(r->w->store, err);
    }
    json_decref(body);
    if (err == RP_ERR_EXISTS)
        rp_reply_error(r, 409, "conflict", "the product has a group of that name");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot create the group");
    else
        rp_reply_json(r, 201, group_json(&g));
}

/* The path's product and group; false: 404 or 500 sent. */
static bool path_group(rp_req_t *r, rp_group_t *g)
{
    rp_product_t p;

    return find_product(r, &r->tenant, rp_req_param(r, "product"), &p) &&
           find_group(r, &p, rp_req_param(r, "group"), g);
}

void rp_h_group_get(rp_req_t *r)
{
    rp_group_t g;

    if (path_group(r, &g))
        rp_reply_json(r, 200, group_json(&g));
}

/* PUT .../groups/G/settings {"crash_capture": bool}: the operator's switches for the group's
 * devices; they learn them in their next status report's answer (docs/failure-reporting.md). */
void rp_h_group_settings_set(rp_req_t *r)
{
    static const char *const keys[] = {"crash_capture"};
    json_t *body;
    rp_group_t g;
    bool capture = true;
    rp_err_t err;

    if (!path_group(r, &g) || (body = rp_req_json(r)) == NULL)
        return;
    if (!rp_json_has_exactly(body, keys, 1)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "the settings are {\"crash_capture\": true|false}");
        return;
    }
    if (!body_bool(r, body, "crash_capture", &capture))
        return;
    json_decref(body);
    err = rp_store_group_set_crash_capture(r->w->store, &g, capture);
    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such device group");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot change the group's settings");
    else {
        rp_log_info("tenant %s: crash capture %s for device group %s (%s)", r->tenant.id,
                    capture ? "on" : "off", g.name, g.id);
        rp_reply_json(r, 200, group_json(&g));
    }
}

/* GET .../groups/G/devices: the group's device IDs in ID order (paged: ?limit&after&prefix, a
 * prefix of the ID, read as an index range; "next_after"). */
void rp_h_group_devices(rp_req_t *r)
{
    json_t *list, *out;
    rp_group_t g;
    rp_page_t pg;

    if (!rp_page_request(r, &pg) || !path_group(r, &g))
        return;
    list = json_array();
    if (rp_store_group_members(r->w->store, g.id, &pg, collect_member, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list the group's devices");
        return;
    }
    if (!rp_page_whole_fits(r, list, &pg, "devices")) {
        json_decref(list);
        return;
    }
    out = json_pack("{s:s, s:o}", "group", g.id, "devices", list);
    if (pg.paged)
        json_object_set_new(out, "next_after", rp_page_next(list, &pg, NULL));
    rp_reply_json(r, 200, out);
}

void rp_h_group_assign(rp_req_t *r)
{
    rp_group_t g;

    /* Into a group that allows unknown images (Development): an admin's decision. */
    if (path_group(r, &g) && (!g.allow_unknown_images ||
                              rp_route_require(r, RP_ROLE_ADMIN,
                                               "moving devices into a group that allows unknown "
                                               "images")))
        assign_devices(r, &g);
}

/* ---- deployments ---- */

static void show_update(void *ctx, const rp_device_update_t *u)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:o, s:s, s:b}", "state", u->state, "detail",
                                         u->detail, "at",
                                         u->at != 0 ? rp_iso_time_json(u->at) : json_null(),
                                         "device_id", u->device_id, "left", u->left));
}

static void show_state(void *ctx, const char *state, int64_t n)
{
    json_t *counts = ctx;

    if (state != NULL)
        json_object_set_new(counts, state,
                            json_integer(json_integer_value(json_object_get(counts, state)) + n));
}

/* The deployment as the API shows it; with its progress and devices (a page of them, or all when
 * devices is not paged) unless devices is NULL. NULL on failure. */
static json_t *deployment_json(rp_req_t *r, const rp_deployment_t *d, const rp_page_t *devices)
{
    json_t *imgs = json_array(), *o;
    rp_image_record_t m;
    rp_group_t g;
    rp_product_t p;

    for (size_t i = 0; i < d->nimages; i++) {
        if (rp_store_image_get(r->w->store, d->tenant_id, d->image_ids[i], &m) == RP_OK)
            json_array_append_new(imgs, json_pack("{s:s, s:s, s:s}", "id", m.id, "component",
                                                  m.component, "version", m.version));
    }
    o = json_pack("{s:s, s:s, s:i, s:s, s:o, s:o}", "id", d->id, "group", d->group_id, "rollout",
                  d->rollout, "status", rp_deploy_status_name(d->status), "images", imgs, "created",
                  rp_iso_time_json(d->created));
    if (rp_store_group_get(r->w->store, d->tenant_id, d->group_id, &g) == RP_OK) {
        json_object_set_new(o, "group_name", json_string(g.name));
        if (rp_store_product_find(r->w->store, d->tenant_id, g.product_id, &p) == RP_OK)
            json_object_set_new(o, "product", json_string(p.name));
    }

    if (devices != NULL) {
        json_t *counts = json_object(), *list = json_array();
        rp_deploy_progress_t pr;

        /* Every state a device can be in, counted or not: scripts rely on the keys. */
        for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++)
            if (rp_update_state_reported((rp_update_state_t)i))
                json_object_set_new(counts, rp_update_state_name((rp_update_state_t)i),
                                    json_integer(0));
        /* The counts cover every device, counted in SQL; the devices listed are the page's. */
        if (rp_store_deployment_progress(r->w->store, d, &pr, show_state, counts) != RP_OK ||
            rp_store_deployment_devices(r->w->store, d, devices, show_update, list) != RP_OK) {
            json_decref(counts);
            json_decref(list);
            json_decref(o);
            return NULL;
        }
        show_state(counts, rp_update_state_name(RP_UPDATE_PENDING), pr.unreported);
        /* What the console's live view shows, over the devices it targets now: reached is each
         * of them that was served targets naming this deployment or reported past pending (a
         * pause keeps these on it); left, apart, the devices moved out of its group since it
         * reached them or they reported it. No count but left can pass selected. */
        json_object_set_new(
            o, "progress",
            json_pack(
                "{s:I, s:I, s:I, s:I, s:I, s:I}", "selected", (json_int_t)pr.selected, "left",
                (json_int_t)pr.left, "reached", (json_int_t)pr.reached, "installed",
                json_integer_value(
                    json_object_get(counts, rp_update_state_name(RP_UPDATE_INSTALLED))),
                "failed",
                json_integer_value(json_object_get(counts, rp_update_state_name(RP_UPDATE_FAILED))),
                "rolled_back",
                json_integer_value(
                    json_object_get(counts, rp_update_state_name(RP_UPDATE_ROLLED_BACK)))));
        json_object_set_new(o, "devices_in_group", json_integer(pr.in_group));
        json_object_set_new(o, "devices_selected", json_integer(pr.selected));
        json_object_set_new(o, "states", counts);
        json_object_set_new(o, "devices", list);
        if (devices->paged)
            json_object_set_new(o, "next_after", rp_page_next(list, devices, "device_id"));
    }
    return o;
}

struct deploy_list {
    rp_req_t *r;
    json_t *list;
};

static void collect_deployment(void *ctx, const rp_deployment_t *d)
{
    struct deploy_list *dl = ctx;

    json_array_append_new(dl->list, deployment_json(dl->r, d, NULL));
}

struct counter_refusal {
    json_t *devices; /* [{"device_id", "security_counter_max"}] */
    uint32_t lowest;
    char names[400]; /* the first device IDs, for the message */
};

static void collect_low_device(void *ctx, const char *device_id, uint32_t max)
{
    struct counter_refusal *cr = ctx;
    size_t len = strlen(cr->names);

    if (json_array_size(cr->devices) == 0 || max < cr->lowest)
        cr->lowest = max;
    json_array_append_new(cr->devices, json_pack("{s:s, s:I}", "device_id", device_id,
                                                 "security_counter_max", (json_int_t)max));
    if (len + strlen(device_id) + 8 < sizeof(cr->names))
        snprintf(cr->names + len, sizeof(cr->names) - len, "%s%s", len > 0 ? ", " : "", device_id);
    else if (strstr(cr->names, "...") == NULL)
        snprintf(cr->names + len, sizeof(cr->names) - len, ", ...");
}

/*
 * Whether every device of the group can hold the image's security counter, by what each reported
 * its root of trust accepts (devices that never said are not known to refuse; blocked devices get
 * no updates, and do not count). A deployment some
 * of them could never install is refused: 409 counter_too_high, naming them. On refusal or
 * failure a reply was sent.
 */
static bool counters_fit(rp_req_t *r, const rp_group_t *g, const rp_image_record_t *m)
{
    struct counter_refusal *cr;
    char message[800];
    size_t n;

    if (!m->has_security_counter)
        return true;
    cr = calloc(1, sizeof(*cr));
    if (cr != NULL)
        cr->devices = json_array();
    if (cr == NULL || cr->devices == NULL ||
        rp_store_group_counter_max_below(r->w->store, g->id, m->security_counter,
                                         collect_low_device, cr) != RP_OK) {
        if (cr != NULL)
            json_decref(cr->devices);
        free(cr);
        rp_reply_error(r, 500, "internal", "cannot read what the group's devices accept");
        return false;
    }
    n = json_array_size(cr->devices);
    if (n > 0) {
        snprintf(message, sizeof(message),
                 "%s %s has security counter %lu, more than %zu device(s) of the group can ever "
                 "install (their root of trust accepts at most %lu): %s",
                 m->component, m->version, (unsigned long)m->security_counter, n,
                 (unsigned long)cr->lowest, cr->names);
        rp_reply_json(r, 409,
                      json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "error", "counter_too_high",
                                "message", message, "image", m->id, "component", m->component,
                                "security_counter", (json_int_t)m->security_counter, "devices",
                                cr->devices));
    } else {
        json_decref(cr->devices);
    }
    free(cr);
    return n == 0;
}

void rp_h_deployment_create(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    json_t *body = rp_req_json(r), *ids, *v, *out, *ignore;
    const char *product, *group;
    rp_deployment_t d;
    rp_product_t p;
    rp_group_t g;
    json_int_t rollout = 100;
    char components[RP_DEPLOY_IMAGES_MAX][RP_NAME_MAX + 1];
    rp_image_record_t m;
    rp_err_t err;
    size_t i;

    if (body == NULL)
        return;
    memset(&d, 0, sizeof(d));
    product = json_string_value(json_object_get(body, "product"));
    group = json_string_value(json_object_get(body, "group"));
    ids = json_object_get(body, "images");
    if (json_object_get(body, "rollout") != NULL)
        rollout = json_is_integer(json_object_get(body, "rollout"))
                      ? json_integer_value(json_object_get(body, "rollout"))
                      : -1;
    ignore = json_object_get(body, "ignore_counter_limits");
    if (product == NULL || group == NULL || !json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > RP_DEPLOY_IMAGES_MAX || rollout < 0 || rollout > 100 ||
        (ignore != NULL && !json_is_boolean(ignore))) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "\"product\", \"group\", \"images\" (1 to %d image IDs) are required; "
                       "\"rollout\" is a percentage, 0 to 100; \"ignore_counter_limits\" is true "
                       "or false",
                       RP_DEPLOY_IMAGES_MAX);
        return;
    }
    /* Past what some devices said their root of trust accepts (they will refuse the image, or one
     * device's report is wrong): an admin's decision. */
    if (json_is_true(ignore) &&
        !rp_route_require(r, RP_ROLE_ADMIN, "deploying past devices' security counter limits")) {
        json_decref(body);
        return;
    }
    if (!find_product(r, tenant, product, &p) || !find_group(r, &p, group, &g)) {
        json_decref(body);
        return;
    }
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        err = rp_image_id_valid(id) ? rp_store_image_get(r->w->store, tenant->id, id, &m)
                                    : RP_ERR_NOT_FOUND;
        if (err != RP_OK) {
            rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                           err == RP_ERR_NOT_FOUND ? "not_found" : "internal",
                           "no image %s in this tenant", id != NULL ? id : "(not a string)");
            json_decref(body);
            return;
        }
        /* One image per component: a device runs one version of each. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(components[j], m.component) == 0) {
                rp_reply_error(r, 400, "invalid", "two images for component %s", m.component);
                json_decref(body);
                return;
            }
        }
        snprintf(components[i], sizeof(components[i]), "%s", m.component);
        snprintf(d.image_ids[d.nimages++], RP_IMAGE_ID_SIZE, "%s", id);
        /* No device of the group is given what its root of trust can never accept. */
        if (!json_is_true(ignore) && !counters_fit(r, &g, &m)) {
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", tenant->id);
    snprintf(d.group_id, sizeof(d.group_id), "%s", g.id);
    d.rollout = (int)rollout;
    if (rp_store_deployment_create(r->w->store, &d) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the deployment");
        return;
    }
    rp_log_info("tenant %s: deployment %s of %zu image(s) to group %s (%d%%)", tenant->id, d.id,
                d.nimages, g.id, d.rollout);
    out = deployment_json(r, &d, NULL);
    rp_reply_json(r, 201, out);
}

void rp_h_deployments_list(rp_req_t *r)
{
    struct deploy_list dl = {r, NULL};
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    dl.list = json_array();
    if (rp_store_deployment_list(r->w->store, r->tenant.id, &pg, collect_deployment, &dl) !=
        RP_OK) {
        json_decref(dl.list);
        rp_reply_error(r, 500, "internal", "cannot list deployments");
        return;
    }
    rp_page_reply(r, "deployments", dl.list, &pg, "id");
}

void rp_h_deployment_get(rp_req_t *r)
{
    const char *deployment_id = rp_req_param(r, "deployment");
    rp_deployment_t d;
    rp_page_t pg;
    json_t *out;
    rp_err_t err;

    if (!rp_page_request(r, &pg))
        return;
    err = rp_object_id_valid(deployment_id, 'd')
              ? rp_store_deployment_get(r->w->store, r->tenant.id, deployment_id, &d)
              : RP_ERR_NOT_FOUND;
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such deployment in this tenant");
        return;
    }
    /* Paged: the counts ("progress", "states") stay the whole deployment's; only the devices
     * listed are a page, in device ID order (what the console polls every 2 s). */
    if (err != RP_OK || (out = deployment_json(r, &d, &pg)) == NULL) {
        rp_reply_error(r, 500, "internal", "cannot read the deployment");
        return;
    }
    if (!rp_page_whole_fits(r, json_object_get(out, "devices"), &pg, "devices")) {
        json_decref(out);
        return;
    }
    rp_reply_json(r, 200, out);
}

/* Pause, resume or stop: what a paused or stopped deployment means to devices is in
 * rp_store_deployment_for_device. */
static void deployment_status_set(rp_req_t *r, rp_deploy_status_t to, const char *verb)
{
    const char *deployment_id = rp_req_param(r, "deployment");
    rp_deployment_t d;
    json_t *out;
    rp_err_t err =
        rp_object_id_valid(deployment_id, 'd')
            ? rp_store_deployment_set_status(r->w->store, r->tenant.id, deployment_id, to, &d)
            : RP_ERR_NOT_FOUND;

    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such deployment in this tenant");
        return;
    }
    if (err == RP_ERR_DENIED) {
        rp_reply_error(r, 409, "stopped",
                       "deployment %s is stopped, which is final: deploy again to continue",
                       deployment_id);
        return;
    }
    if (err != RP_OK || (out = deployment_json(r, &d, NULL)) == NULL) {
        rp_reply_error(r, 500, "internal", "cannot change the deployment");
        return;
    }
    rp_log_info("tenant %s: deployment %s %s", r->tenant.id, d.id, verb);
    rp_reply_json(r, 200, out);
}

void rp_h_deployment_pause(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_PAUSED, "paused");
}

void rp_h_deployment_resume(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_ACTIVE, "resumed");
}

void rp_h_deployment_stop(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_STOPPED, "stopped");
}
