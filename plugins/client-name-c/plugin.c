/*
 * client-name-c: puts the calling application into its access token, in C.
 *
 * A small port of the Rust plugin `client-claims` (without its metadata
 * copying) that shows how a Tessera plugin is written against the raw
 * bindings `wit-bindgen c` generates from `wit/plugin.wit`. It exports only
 * the `credentials-exchange` world and sets two access-token claims:
 *
 *   {namespace}client_name      the client's display name
 *   {namespace}client_app_type  "spa", "regular_web", "native" or "machine"
 *
 * `namespace` is read from the plugin's config table with the host import
 * `config("namespace")`. Without it (or when it is empty) the plugin writes
 * `client-name-c: config key "namespace" is required` to stderr and traps;
 * the host puts stderr into the call's logs and fails the request per the
 * plugin's `on_error`.
 *
 * Memory, per the canonical ABI as wit-bindgen's C generator maps it:
 *
 *  - The event is owned by this function: the host copied it into our
 *    linear memory with `cabi_realloc` (malloc). We free it with the
 *    generated `..._event_free` once we are done with it.
 *  - Arguments we pass to imports (`config`'s key, `log`'s message) stay
 *    ours: the host copies them, so a string literal is fine, and a buffer
 *    we malloc'd is ours to free afterwards.
 *  - A string an import returns (`config`'s value) was allocated in our
 *    memory by the host: we own it and free it.
 *  - Everything we return is freed after the host has read it, by the
 *    generated `cabi_post_on-credentials-exchange`, which calls `free` on
 *    every non-empty string and list. So every returned string must come
 *    from malloc, never a literal or a pointer into the event.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials_exchange.h"

/* Shorter names for the generated types this file uses. */
typedef credentials_exchange_string_t string_t;
typedef tessera_plugin_types_tuple2_string_value_t claim_t;

/* Prefix of every message, like the Rust plugin's `client-claims:`. */
#define PLUGIN "client-name-c"

/* The number of claims the plugin sets. */
#define CLAIM_COUNT 2

/*
 * Writes `PLUGIN: message` to stderr and traps. A trap ends the call; the
 * instance is thrown away, so nothing needs freeing first.
 */
static _Noreturn void fail(const char *message) {
    fprintf(stderr, PLUGIN ": %s\n", message);
    abort(); /* wasi-libc's abort is the `unreachable` instruction: a trap */
}

/* malloc that traps instead of returning NULL. */
static void *xmalloc(size_t size) {
    void *memory = malloc(size);
    if (memory == NULL) {
        fail("out of memory");
    }
    return memory;
}

/* The claim value for an app type, as the Rust SDK spells it. */
static const char *app_type_name(tessera_plugin_types_app_type_t app_type) {
    switch (app_type) {
    case TESSERA_PLUGIN_TYPES_APP_TYPE_SPA:
        return "spa";
    case TESSERA_PLUGIN_TYPES_APP_TYPE_REGULAR_WEB:
        return "regular_web";
    case TESSERA_PLUGIN_TYPES_APP_TYPE_NATIVE:
        return "native";
    case TESSERA_PLUGIN_TYPES_APP_TYPE_MACHINE:
        return "machine";
    default:
        fail("unknown app type"); /* the canonical ABI rejects it first */
    }
}

/* A new malloc'd string: `prefix` followed by the C string `suffix`. */
static string_t concat(const string_t *prefix, const char *suffix) {
    size_t suffix_len = strlen(suffix);
    string_t out;
    out.len = prefix->len + suffix_len;
    out.ptr = xmalloc(out.len);
    memcpy(out.ptr, prefix->ptr, prefix->len);
    memcpy(out.ptr + prefix->len, suffix, suffix_len);
    return out;
}

/* Sets `claim` to `{namespace}{name}` = the text `value` (copied). */
static void set_text_claim(claim_t *claim, const string_t *namespace, const char *name,
                           const uint8_t *value, size_t value_len) {
    claim->f0 = concat(namespace, name);
    claim->f1.tag = TESSERA_PLUGIN_TYPES_VALUE_TEXT;
    /* dup_n mallocs and copies; strings in the ABI are not NUL-terminated */
    credentials_exchange_string_dup_n(&claim->f1.val.text, (const char *)value, value_len);
}

/*
 * Logs a debug line, formatted like printf. The line is formatted into a
 * buffer of its exact size: a fixed buffer could cut a UTF-8 sequence in
 * two, and the host refuses (traps on) a string that is not valid UTF-8.
 * The host truncates long messages itself.
 */
static void log_debugf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (len < 0) {
        return; /* an encoding error: skip the line rather than fail the call */
    }
    char *line = xmalloc((size_t)len + 1);
    va_start(args, format);
    vsnprintf(line, (size_t)len + 1, format, args);
    va_end(args);
    /* The host copies the message, so it stays ours to free. */
    string_t message = {(uint8_t *)line, (size_t)len};
    tessera_plugin_host_log(TESSERA_PLUGIN_TYPES_LOG_LEVEL_DEBUG, &message);
    free(line);
}

/*
 * The export of the `credentials-exchange` world. Returns true with `ret`
 * filled (result::ok) or false with `err` filled (result::err, a denial);
 * this plugin never denies.
 */
bool exports_credentials_exchange_on_credentials_exchange(
    credentials_exchange_credentials_exchange_event_t *event,
    credentials_exchange_changes_t *ret,
    credentials_exchange_denial_t *err) {
    (void)err;
    const tessera_plugin_types_client_t *client = &event->client;

    /* config("namespace"): the key is borrowed, the value (if any) is ours. */
    string_t key;
    credentials_exchange_string_set(&key, "namespace");
    string_t namespace;
    if (!tessera_plugin_host_config(&key, &namespace) || namespace.len == 0) {
        fail("config key \"namespace\" is required");
    }

    /* The claims list and everything in it are freed by the post-return. */
    claim_t *claims = xmalloc(CLAIM_COUNT * sizeof *claims);
    set_text_claim(&claims[0], &namespace, "client_name", client->name.ptr, client->name.len);
    const char *app_type = app_type_name(client->app_type);
    set_text_claim(&claims[1], &namespace, "client_app_type", (const uint8_t *)app_type,
                   strlen(app_type));

    /* Empty lists change nothing; an empty list is {NULL, 0} and is not freed. */
    memset(ret, 0, sizeof *ret);
    ret->access_token_claims.ptr = claims;
    ret->access_token_claims.len = CLAIM_COUNT;

    /* %.*s: strings in the ABI are a pointer and a length. */
    log_debugf(PLUGIN ": client \"%.*s\": set client_name, client_app_type under %.*s",
               (int)client->id.len, (const char *)client->id.ptr,
               (int)namespace.len, (const char *)namespace.ptr);

    credentials_exchange_string_free(&namespace);
    credentials_exchange_credentials_exchange_event_free(event);
    return true;
}
