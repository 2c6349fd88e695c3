/* The write side of FastCGI. The worker accepts connections and libfcgi
 * parses every request; the response records are written here, because libfcgi's
 * writer flushes every 8 kB (a 20 kB answer costs nginx three wakeups)
 * and writes the closing records separately. Here a whole response,
 * its end-of-stream record and FCGI_END_REQUEST leave in one writev. */
#ifndef SV_FCGI_H
#define SV_FCGI_H

#include <stddef.h>

/* Largest content of one record (the protocol's 16-bit length). */
#define SV_FCGI_MAX_CONTENT 65535

/* Writes head then body as FCGI_STDOUT records of request_id, the empty
 * FCGI_STDOUT record that ends the stream and FCGI_END_REQUEST (status
 * 0, request complete) to fd. Either part may be empty. Returns 0, or
 * -1 with errno set when the peer has gone away. */
int sv_fcgi_send_response(int fd, int request_id, const char *head, size_t head_len,
                          const char *body, size_t body_len);

#endif
