/*
 * mem.h - allocation wrappers that never return NULL.
 *
 * Every allocation in Postern goes through these. Out of memory is an
 * environment failure: the process logs a fatal error and exits, so callers
 * never test for NULL. Sizes are checked for multiplication overflow.
 */
#ifndef POSTERN_MEM_H
#define POSTERN_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);                 /* uninitialised */
void *mem_zalloc(size_t size);                /* zero-filled */
void *mem_array(size_t count, size_t size);   /* zero-filled, overflow-checked */
void *mem_realloc(void *ptr, size_t size);
void *mem_grow_array(void *ptr, size_t *cap, size_t want, size_t elem);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void *mem_memdup(const void *p, size_t n);
void  mem_free(void *ptr);

#endif
