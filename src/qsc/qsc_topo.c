/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc_topo.c - the topology file of qkd-qscd: nodes with their role and the QKD links between
 * them, one declaration a line (qkd-qscd(8), conf/qsc-topology.conf):
 *
 *   node NAME backbone|access
 *   link NAME NODE NODE
 *
 * '#' starts a comment; a node is declared before a link names it. Every error names the line.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS_MAX 5

int qsc_name_valid(const char *s, size_t len)
{
	size_t i;

	if (!s || len == 0 || len > QSC_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int qsc_topo_node(const struct qsc_topo *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n_nodes; i++)
		if (strcmp(t->nodes[i].name, name) == 0)
			return (int)i;
	return -1;
}

int qsc_topo_link(const struct qsc_topo *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n_links; i++)
		if (strcmp(t->links[i].name, name) == 0)
			return (int)i;
	return -1;
}

int qsc_topo_link_between(const struct qsc_topo *t, int a, int b)
{
	size_t i;

	for (i = 0; i < t->n_links; i++) {
		const struct qsc_link *l = &t->links[i];
		if ((l->end[0] == a && l->end[1] == b) || (l->end[0] == b && l->end[1] == a))
			return (int)i;
	}
	return -1;
}

int qsc_fail(char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "line %u: %s", line, what);
	else
		snprintf(err, errlen, "%s", what);
	return -1;
}

/* Split line (modified in place) into at most FIELDS_MAX fields; -1 if there are more. */
static int split(char *line, char *field[FIELDS_MAX])
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			return n;
		if (n == FIELDS_MAX)
			return -1;
		field[n++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '#')
			p++;
		if (*p == '#') {
			*p = '\0';
			return n;
		}
		if (*p)
			*p++ = '\0';
	}
}

static int add_node(struct qsc_topo *t, char **f, int n, unsigned line, char *err, size_t el)
{
	struct qsc_node *node;

	if (n != 3)
		return qsc_fail(err, el, line, "'node' takes a name and a role: node NAME backbone|access");
	if (!qsc_name_valid(f[1], strlen(f[1])))
		return qsc_fail(err, el, line, "node name '%.64s' is not 1-%d letters, digits, '.', '_', '-'",
			    f[1], QSC_NAME_MAX);
	if (qsc_topo_node(t, f[1]) >= 0)
		return qsc_fail(err, el, line, "node %s is declared twice", f[1]);
	if (t->n_nodes == QSC_NODES_MAX)
		return qsc_fail(err, el, line, "more than %d nodes", QSC_NODES_MAX);
	node = &t->nodes[t->n_nodes];
	if (strcmp(f[2], "backbone") == 0)
		node->role = QSC_BACKBONE;
	else if (strcmp(f[2], "access") == 0)
		node->role = QSC_ACCESS;
	else
		return qsc_fail(err, el, line, "node %s: role '%.32s' is neither backbone nor access",
			    f[1], f[2]);
	memcpy(node->name, f[1], strlen(f[1]) + 1);
	t->n_nodes++;
	return 0;
}

static int add_link(struct qsc_topo *t, char **f, int n, unsigned line, char *err, size_t el)
{
	struct qsc_link *l;
	int a, b;

	if (n != 4)
		return qsc_fail(err, el, line, "'link' takes a name and two nodes: link NAME NODE NODE");
	if (!qsc_name_valid(f[1], strlen(f[1])))
		return qsc_fail(err, el, line, "link name '%.64s' is not 1-%d letters, digits, '.', '_', '-'",
			    f[1], QSC_NAME_MAX);
	if (qsc_topo_link(t, f[1]) >= 0)
		return qsc_fail(err, el, line, "link %s is declared twice", f[1]);
	a = qsc_topo_node(t, f[2]);
	b = qsc_topo_node(t, f[3]);
	if (a < 0 || b < 0)
		return qsc_fail(err, el, line, "link %s: node %.64s is not declared (declare nodes first)",
			    f[1], a < 0 ? f[2] : f[3]);
	if (a == b)
		return qsc_fail(err, el, line, "link %s joins node %s to itself", f[1], f[2]);
	if (qsc_topo_link_between(t, a, b) >= 0)
		return qsc_fail(err, el, line, "link %s: nodes %s and %s are already linked (by %s)",
			    f[1], f[2], f[3], t->links[qsc_topo_link_between(t, a, b)].name);
	if (t->n_links == QSC_LINKS_MAX)
		return qsc_fail(err, el, line, "more than %d links", QSC_LINKS_MAX);
	l = &t->links[t->n_links];
	memset(l, 0, sizeof(*l));
	memcpy(l->name, f[1], strlen(f[1]) + 1);
	l->end[0] = a;
	l->end[1] = b;
	t->n_links++;
	return 0;
}

int qsc_topo_parse(const char *text, size_t len, struct qsc_topo *t, char *err, size_t errlen)
{
	char line[QSC_LINE_MAX + 1];
	size_t pos = 0;
	unsigned lineno = 0;

	memset(t, 0, sizeof(*t));
	if (memchr(text, '\0', len))
		return qsc_fail(err, errlen, 0, "NUL byte in the topology (not a text file)");
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *f[FIELDS_MAX];
		int nf;

		lineno++;
		if (n > QSC_LINE_MAX)
			return qsc_fail(err, errlen, lineno, "longer than %d characters", QSC_LINE_MAX);
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		nf = split(line, f);
		if (nf < 0)
			return qsc_fail(err, errlen, lineno, "too many words");
		if (nf == 0)
			continue;
		if (strcmp(f[0], "node") == 0) {
			if (add_node(t, f, nf, lineno, err, errlen) < 0)
				return -1;
		} else if (strcmp(f[0], "link") == 0) {
			if (add_link(t, f, nf, lineno, err, errlen) < 0)
				return -1;
		} else {
			return qsc_fail(err, errlen, lineno, "unknown keyword '%.32s' (node or link)", f[0]);
		}
	}
	if (t->n_nodes < 2 || t->n_links < 1)
		return qsc_fail(err, errlen, 0, "a topology needs at least two nodes and one link");
	return 0;
}

int qsc_topo_load(const char *path, struct qsc_topo *t, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t cap = QSC_LINE_MAX * (QSC_NODES_MAX + QSC_LINKS_MAX) * 2, n;
	char why[256];
	int rc;

	if (!f)
		return qsc_fail(err, errlen, 0, "cannot open topology %s: %s", path, strerror(errno));
	buf = malloc(cap + 1);
	if (!buf) {
		fclose(f);
		return qsc_fail(err, errlen, 0, "out of memory");
	}
	n = fread(buf, 1, cap + 1, f);
	fclose(f);
	if (n > cap) {
		free(buf);
		return qsc_fail(err, errlen, 0, "topology %s is larger than %zu bytes", path, cap);
	}
	rc = qsc_topo_parse(buf, n, t, why, sizeof(why));
	free(buf);
	if (rc < 0)
		return qsc_fail(err, errlen, 0, "topology %s: %s", path, why);
	return 0;
}
