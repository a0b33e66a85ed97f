/*
 * xsshim.c — LD_PRELOAD library that lets Debian's C xenstored (Xen 4.17) run as an ordinary
 * process with no hypervisor, for the xen-sim conformance suite. Compiled at test time into
 * target/; never committed as a binary.
 *
 * It replaces the few libxenctrl / libxenevtchn / libxengnttab entry points xenstored imports:
 *   - /proc/xen/xsd_port and /proc/xen/xsd_kva are redirected into $XSSHIM_DIR;
 *   - a domain exists while the 4 KiB file $XSSHIM_DIR/ring-<domid> exists (dom0 always);
 *   - grant-mapping a domain's store ring maps that file;
 *   - kicks to xenstored arrive as datagrams on $XSSHIM_DIR/evtchn.sock;
 *   - xenstored's notifications leave as {u32 domid, u32 port} datagrams to
 *     $XSSHIM_DIR/notify.sock (dropped when nobody listens).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define MAX_PORTS 4096

static const char *shim_dir(void)
{
	const char *d = getenv("XSSHIM_DIR");
	return d ? d : ".";
}

static void shim_path(char *out, size_t len, const char *leaf)
{
	snprintf(out, len, "%s/%s", shim_dir(), leaf);
}

static void ring_path(char *out, size_t len, uint32_t domid)
{
	char leaf[32];
	snprintf(leaf, sizeof leaf, "ring-%u", domid);
	shim_path(out, len, leaf);
}

int open(const char *file, int flags, ...)
{
	static int (*next_open)(const char *, int, ...);
	char redirected[512];
	mode_t mode = 0;

	if (!next_open)
		next_open = dlsym(RTLD_NEXT, "open");
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (strcmp(file, "/proc/xen/xsd_port") == 0) {
		shim_path(redirected, sizeof redirected, "xsd_port");
		file = redirected;
	} else if (strcmp(file, "/proc/xen/xsd_kva") == 0) {
		ring_path(redirected, sizeof redirected, 0);
		file = redirected;
	}
	return next_open(file, flags, mode);
}

/* ---- libxenctrl ---- */
static int xc_token;

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
				unsigned open_flags)
{
	(void)logger; (void)dombuild_logger; (void)open_flags;
	return (xc_interface *)&xc_token;
}

int xc_interface_close(xc_interface *xch)
{
	(void)xch;
	return 0;
}

static int domain_exists(uint32_t domid)
{
	char p[512];
	struct stat st;

	if (domid == 0)
		return 1;
	ring_path(p, sizeof p, domid);
	return stat(p, &st) == 0;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
		      xc_dominfo_t *info)
{
	unsigned int found = 0;
	(void)xch;
	for (uint32_t d = first_domid; d < DOMID_FIRST_RESERVED && found < max_doms; d++) {
		if (d > first_domid + 256)
			break;
		if (!domain_exists(d))
			continue;
		memset(&info[found], 0, sizeof info[found]);
		info[found].domid = d;
		info[found].running = 1;
		found++;
	}
	return (int)found;
}

/* ---- libxengnttab ---- */
static int gnttab_token;

xengnttab_handle *xengnttab_open(xentoollog_logger *logger, unsigned open_flags)
{
	(void)logger; (void)open_flags;
	return (xengnttab_handle *)&gnttab_token;
}

int xengnttab_close(xengnttab_handle *xgt)
{
	(void)xgt;
	return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
	(void)xgt; (void)nr_grants;
	return 0;
}

void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
	char p[512];
	int fd;
	void *page;
	(void)xgt; (void)ref;

	ring_path(p, sizeof p, domid);
	fd = open(p, O_RDWR);
	if (fd < 0)
		return NULL;
	page = mmap(NULL, 4096, prot, MAP_SHARED, fd, 0);
	close(fd);
	return page == MAP_FAILED ? NULL : page;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
	(void)xgt;
	return munmap(start_address, 4096 * (size_t)count);
}

/* ---- libxenevtchn ---- */
static int evtchn_fd = -1;
static uint32_t next_port = 16;
static uint32_t port_owner[MAX_PORTS];

xenevtchn_handle *xenevtchn_open(xentoollog_logger *logger, unsigned open_flags)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char p[512];
	(void)logger; (void)open_flags;

	shim_path(p, sizeof p, "evtchn.sock");
	unlink(p);
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", p);
	evtchn_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (evtchn_fd < 0)
		return NULL;
	if (bind(evtchn_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		return NULL;
	return (xenevtchn_handle *)&evtchn_fd;
}

xenevtchn_handle *xenevtchn_fdopen(xentoollog_logger *logger, int fd, unsigned open_flags)
{
	(void)logger; (void)fd; (void)open_flags;
	errno = ENOSYS;
	return NULL;
}

int xenevtchn_close(xenevtchn_handle *xce)
{
	(void)xce;
	return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
	(void)xce;
	return evtchn_fd;
}

static int new_port(uint32_t owner)
{
	if (next_port >= MAX_PORTS) {
		errno = ENOSPC;
		return -1;
	}
	port_owner[next_port] = owner;
	return (int)next_port++;
}

int xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
	(void)xce; (void)virq;
	return new_port(DOMID_SELF);
}

int xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid, uint32_t remote_port)
{
	(void)xce; (void)remote_port;
	return new_port(domid);
}

int xenevtchn_unbind(xenevtchn_handle *xce, uint32_t port)
{
	(void)xce; (void)port;
	return 0;
}

int xenevtchn_unmask(xenevtchn_handle *xce, uint32_t port)
{
	(void)xce; (void)port;
	return 0;
}

int xenevtchn_pending(xenevtchn_handle *xce)
{
	uint32_t port = 0;
	ssize_t got;
	(void)xce;

	got = recv(evtchn_fd, &port, sizeof port, MSG_DONTWAIT);
	if (got < 0)
		return errno == EAGAIN ? 0 : -1;
	return (int)port;
}

int xenevtchn_notify(xenevtchn_handle *xce, uint32_t port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	uint32_t msg[2];
	char p[512];
	(void)xce;

	shim_path(p, sizeof p, "notify.sock");
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", p);
	msg[0] = port < MAX_PORTS ? port_owner[port] : 0;
	msg[1] = port;
	sendto(evtchn_fd, msg, sizeof msg, MSG_DONTWAIT, (struct sockaddr *)&addr, sizeof addr);
	return 0;
}
