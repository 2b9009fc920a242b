/*
 * store.h - the reads and state changes order-api makes outside group commit:
 * fetching, listing and canceling orders, the timeline, readiness.
 *
 * Each HTTP thread owns one PostgreSQL connection (made on first use, remade
 * after a failure); results are returned as jansson values ready to send.
 */
#ifndef ORDER_API_STORE_H
#define ORDER_API_STORE_H

#include <jansson.h>
#include <stdint.h>

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND,
    STORE_CONFLICT,    /* cancel of an order that is no longer PENDING */
    STORE_UNAVAILABLE, /* the database is down: 503 */
    STORE_ERROR,       /* anything else: 500 */
};

void store_init(void);
void store_shutdown(void);

enum store_rc store_ping(void);
/* customer: the caller's tenant, or NULL for every customer (admin scope).
 * An order of another customer is STORE_NOT_FOUND, exactly like a missing one. */
enum store_rc store_get_order(const char *id, const char *customer, json_t **order);
/* status may be NULL; cursor_us/cursor_id (both or neither) continue a listing.
 * *next_cursor is set (malloc) only when another page exists. */
enum store_rc store_list_orders(const char *customer, const char *status, int limit,
                                int64_t cursor_us, const char *cursor_id, json_t **orders,
                                char **next_cursor);
enum store_rc store_order_events(const char *id, const char *customer, json_t **events);
/* PENDING -> CANCELED, recording principal (who canceled) on the timeline;
 * STORE_CONFLICT with the current order in *order otherwise. */
enum store_rc store_cancel_order(const char *id, const char *customer, const char *principal,
                                 const char *correlation_id, json_t **order);

#endif
