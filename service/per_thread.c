/* per_thread — a per-thread pool's key and lock. See include/per_thread.h. */
#include "per_thread.h"

int per_thread_init(pthread_key_t *key, pthread_mutex_t *lock) {
    if (pthread_key_create(key, NULL) != 0) return -1;
    if (pthread_mutex_init(lock, NULL) != 0) {
        pthread_key_delete(*key);
        return -1;
    }
    return 0;
}

void per_thread_cleanup(pthread_key_t key, pthread_mutex_t *lock) {
    pthread_key_delete(key);
    pthread_mutex_destroy(lock);
}
