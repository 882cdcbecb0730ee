/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: what an SAE sends to qkd-kmsd's ETSI GS QKD 014 API, through the
 * parsers in kmsd_api.c (included here: they are static to that file). Input byte 0 picks the
 * request, the rest is its body or query string:
 *   0  enc_keys POST body: parse_body (https_json_object), then the number and size members (json_uint)
 *   1  dec_keys POST body: dec_parse_body, then dec_validate (UUIDs, no key_ID twice)
 *   2  a query string "k=v&k=v..." as libmicrohttpd hands it over (query_iter), then parse_dec
 *      on number and size and the dec_keys key_ID checks
 */
#include "../kmsd_api.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_enc_body(const struct https_request *rq)
{
	struct json_object *o;
	const char *why = NULL;
	unsigned number = 1, bits = 256;
	int present;

	o = parse_body(rq, &why);
	if (!o)
		return;
	if (json_uint(o, "number", &number, &present))
		json_uint(o, "size", &bits, &present);
	json_object_put(o);
}

static void fuzz_dec_body(const struct kmsd_kme *k, const struct https_request *rq)
{
	struct dec_work *w = calloc(1, sizeof(*w));

	if (!w)
		return;
	if (dec_parse_body((struct kmsd_kme *)k, rq, w) == 0)
		dec_validate(w);
	json_object_put(w->body);
	free(w);
}

/* "k=v&k=v": key and value NUL-terminated in a copy, as MHD passes them to the iterator. */
static void fuzz_query(const struct kmsd_kme *k, const char *text, size_t len)
{
	char *copy = malloc(len + 1), *p, *amp, *eq;
	struct query q = {0};
	struct dec_work *w;
	unsigned v;
	size_t i;

	if (!copy)
		return;
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (p = copy; p; p = amp) {
		amp = strchr(p, '&');
		if (amp)
			*amp++ = '\0';
		eq = strchr(p, '=');
		if (eq)
			*eq++ = '\0';
		query_iter(&q, MHD_GET_ARGUMENT_KIND, p, eq);
	}
	if (q.n_number)
		parse_dec(q.number, &v);
	if (q.n_size)
		parse_dec(q.size, &v);
	w = calloc(1, sizeof(*w));
	if (w && q.n_key_ids && q.n_key_ids <= k->max_key_per_request) {
		w->n = q.n_key_ids;
		for (i = 0; i < w->n; i++)
			w->ids_text[i] = q.key_ids[i] ? q.key_ids[i] : "";
		dec_validate(w);
	}
	free(w);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmsd_kme k;
	struct https_request rq = {0};
	char *body;

	if (size < 1)
		return 0;
	memset(&k, 0, sizeof(k));
	k.max_key_per_request = KMSD_PER_REQUEST_MAX;
	/* the body as a request hands it over, but exactly len bytes without the terminator
	 * https_server.c adds, so a read past the end is caught */
	rq.len = size - 1;
	body = rq.len ? malloc(rq.len) : NULL;
	if (rq.len && !body)
		return 0;
	if (rq.len)
		memcpy(body, data + 1, rq.len);
	rq.body = body;
	switch (data[0] % 3) {
	case 0:
		fuzz_enc_body(&rq);
		break;
	case 1:
		fuzz_dec_body(&k, &rq);
		break;
	default:
		fuzz_query(&k, (const char *)data + 1, size - 1);
		break;
	}
	free(body);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer): '=' + text, byte 0 the mode. */
const char *const fuzz_seeds[] = {
	"=0{\"number\":2,\"size\":256}",
	"=0{\"number\":1,\"size\":256,\"additional_slave_SAE_IDs\":[],\"extension_optional\":[]}",
	"=1{\"key_IDs\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\"},"
	"{\"key_ID\":\"00000000-0000-4000-8000-000000000002\"}]}",
	"=1{\"key_IDs\":[{\"key_ID\":\"00000000-0000-4000-8000-000000000002\"},"
	"{\"key_ID\":\"00000000-0000-4000-8000-000000000002\"}]}",
	"=2number=4&size=512",
	"=2key_ID=bc490419-7d60-487f-adc1-4ddcc177c139&key_ID=00000000-0000-4000-8000-000000000002",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
