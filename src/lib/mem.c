/*
 * mem.c - allocation wrappers; see mem.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

static void *
checked(void *p, size_t size)
{
    if (p == NULL && size != 0)
        log_fatal("out of memory allocating %zu bytes", size);
    return p;
}

void *
mem_alloc(size_t size)
{
    return checked(malloc(size ? size : 1), size);
}

void *
mem_zalloc(size_t size)
{
    return checked(calloc(1, size ? size : 1), size);
}

void *
mem_array(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        log_panic("mem_array: %zu * %zu overflows", count, size);
    return mem_zalloc(count * size);
}

void *
mem_realloc(void *ptr, size_t size)
{
    return checked(realloc(ptr, size ? size : 1), size);
}

/*
 * Grow an array so that it holds at least "want" elements of "elem" bytes.
 * *cap is the current capacity in elements and is updated. New slots are
 * zero-filled.
 */
void *
mem_grow_array(void *ptr, size_t *cap, size_t want, size_t elem)
{
    size_t  ncap;

    if (want <= *cap)
        return ptr;
    ncap = *cap ? *cap : 8;
    while (ncap < want) {
        if (ncap > SIZE_MAX / 2)
            log_panic("mem_grow_array: capacity overflow");
        ncap *= 2;
    }
    if (elem != 0 && ncap > SIZE_MAX / elem)
        log_panic("mem_grow_array: %zu * %zu overflows", ncap, elem);
    ptr = mem_realloc(ptr, ncap * elem);
    memset((char *) ptr + *cap * elem, 0, (ncap - *cap) * elem);
    *cap = ncap;
    return ptr;
}

char *
mem_strdup(const char *s)
{
    return mem_memdup(s, strlen(s) + 1);
}

char *
mem_strndup(const char *s, size_t n)
{
    size_t  len = strnlen(s, n);
    char   *p = mem_alloc(len + 1);

    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void *
mem_memdup(const void *p, size_t n)
{
    void   *q = mem_alloc(n);

    if (n)
        memcpy(q, p, n);
    return q;
}

void
mem_free(void *ptr)
{
    free(ptr);
}
