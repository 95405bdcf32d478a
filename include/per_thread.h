/* per_thread — what a pool of per-thread objects (store_pool, crm_pool) creates together: a
 * key for the calling thread's object and the lock of the list of every thread's objects.
 *
 * Owns nothing past its calls: the pool holds the key and the lock. */
#ifndef CS_PER_THREAD_H
#define CS_PER_THREAD_H

#include <pthread.h>

/* Creates both: 0, or -1 with neither left. */
int per_thread_init(pthread_key_t *key, pthread_mutex_t *lock);
/* Deletes both (the objects themselves are the pool's to free first). */
void per_thread_cleanup(pthread_key_t key, pthread_mutex_t *lock);

#endif
