/* json.h - a small, strict JSON parser (to a read-only tree) and writer,
 * for the supervisor's control protocol and journal.
 *
 * Owns: the tree of one parsed document (struct json_doc, freed with
 * json_free) and the buffer of one writer (struct json_w).
 *
 * Strict: RFC 8259 only. One value per document (leading and trailing
 * whitespace allowed, nothing else), no duplicate keys in an object,
 * strings are valid UTF-8 without raw control characters, "\u0000" is
 * refused (keys and values are C strings). Bounded: at most JSON_DEPTH_MAX
 * levels of nesting and JSON_NODES_MAX values per document; the caller
 * bounds the input length. A number is kept as an int64 when it is written
 * without fraction or exponent and fits; else it is only a double.
 *
 * Thread safety: none; a document or writer belongs to one thread.
 * Errors: json_parse returns NULL and a sentence in err[]; writer calls
 * record allocation failure in w->oom, checked once at the end.
 */
#ifndef ATOLL_SUPER_JSON_H
#define ATOLL_SUPER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX 16
#define JSON_NODES_MAX 8192

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	bool b;
	bool is_int;       /* JSON_NUM: integral and fits int64 */
	int64_t i;
	double d;
	char *s;           /* JSON_STR: NUL-terminated */
	size_t len;        /* JSON_STR: bytes; ARR/OBJ: members */
	char **keys;       /* JSON_OBJ: len keys */
	struct json **kids; /* ARR/OBJ: len members */
};

struct json_doc;

/* Parse len bytes at text. Returns the document (root via json_root) or
 * NULL with a sentence in err (errlen bytes). */
struct json_doc *json_parse(const char *text, size_t len, char *err,
			    size_t errlen);
const struct json *json_root(const struct json_doc *doc);
void json_free(struct json_doc *doc);

/* Member key of object o, or NULL (also when o is not an object). */
const struct json *json_get(const struct json *o, const char *key);

/* Writer: a growing buffer; begin/end nest up to JSON_DEPTH_MAX. */
struct json_w {
	char *buf;
	size_t len, cap;
	bool oom;
	int depth;
	bool first[JSON_DEPTH_MAX + 1];
	bool after_key;
};

void jw_init(struct json_w *w);
void jw_free(struct json_w *w);
void jw_obj(struct json_w *w);
void jw_obj_end(struct json_w *w);
void jw_arr(struct json_w *w);
void jw_arr_end(struct json_w *w);
void jw_key(struct json_w *w, const char *key);
void jw_str(struct json_w *w, const char *s);
void jw_int(struct json_w *w, int64_t v);
void jw_bool(struct json_w *w, bool v);
void jw_null(struct json_w *w);
/* A finite double as the shortest of %.15g; NaN and infinities as null. */
void jw_double(struct json_w *w, double v);
/* A copy of a parsed value (numbers keep their int or double form). */
void jw_json(struct json_w *w, const struct json *v);
/* Append the members of obj (a complete object this writer produced,
 * "{...}", len bytes) to the object being written. */
void jw_members(struct json_w *w, const char *obj, size_t len);
/* Shorthands for a key and its value. */
void jw_kstr(struct json_w *w, const char *key, const char *s);
void jw_kint(struct json_w *w, const char *key, int64_t v);
void jw_kbool(struct json_w *w, const char *key, bool v);
void jw_kdouble(struct json_w *w, const char *key, double v);

#endif /* ATOLL_SUPER_JSON_H */
