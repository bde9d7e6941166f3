/* proto.h - constants of the supervisor control protocol, shared by atolld
 * and the atoll CLI (docs/supervisor-protocol.md is the specification).
 *
 * Owns: nothing (constants only). Header only; safe from any context.
 *
 * Transport: a UNIX stream socket; each request and each reply is one JSON
 * object on one line ending in '\n', at most PROTO_LINE_MAX bytes with the
 * newline. One reply per request, in order.
 */
#ifndef ATOLL_PROTO_H
#define ATOLL_PROTO_H

#define PROTO_VERSION 1

/* Socket path when $ATOLL_SOCKET is not set. */
#define PROTO_SOCKET_ENV "ATOLL_SOCKET"
#define PROTO_SOCKET_DEFAULT "/run/atoll/atolld.sock"

/* Longest request or reply line, newline included. */
#define PROTO_LINE_MAX 65536

/* Longest cell name; names are [A-Za-z0-9_-], starting with a letter or
 * digit, so they are safe as cgroup directory names. */
#define PROTO_NAME_MAX 32

/* Error codes carried in {"ok":false,"error":{"code":...,"message":...}}. */
#define PROTO_E_PARSE "parse"          /* not one strict JSON object */
#define PROTO_E_TOOLONG "too-long"     /* line over PROTO_LINE_MAX */
#define PROTO_E_BADREQ "bad-request"   /* a field missing, unknown, ill-typed */
#define PROTO_E_UNKNOWN_OP "unknown-op"
#define PROTO_E_PERM "permission"      /* peer may not change cells */
#define PROTO_E_NOCELL "unknown-cell"
#define PROTO_E_EXISTS "exists"        /* cell name taken */
#define PROTO_E_RANGE "range"          /* a size out of range */
#define PROTO_E_BUSY "busy"            /* cores taken by another cell */
#define PROTO_E_NOCORES "no-cores"     /* not enough free cores */
#define PROTO_E_ADMISSION "admission"  /* provision cannot be honoured */
#define PROTO_E_NOPROC "no-process"    /* attach: pid gone or not the peer */
#define PROTO_E_SYSTEM "system"        /* a kernel interface failed */
#define PROTO_E_LIMIT "limit"          /* too many cells or clients */
#define PROTO_E_NOTALLOWED "not-allowed" /* chan.check: a side does not allow */

/* Enforcement levels reported in every reply ("enforcement"). */
#define PROTO_ENF_V2 "cgroup-v2"
#define PROTO_ENF_V1 "cgroup-v1"
#define PROTO_ENF_AFFINITY "affinity"  /* weak: reply carries "weak":true */

/* CLI exit codes (atoll --help repeats them). */
#define ATOLL_EXIT_OK 0
#define ATOLL_EXIT_REFUSED 1   /* atolld answered with an error */
#define ATOLL_EXIT_USAGE 2     /* bad command line */
#define ATOLL_EXIT_CONNECT 3   /* atolld unreachable or protocol broken */
#define ATOLL_EXIT_EXEC 127    /* atoll run: the command could not be run */

#endif /* ATOLL_PROTO_H */
