// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Guest discovery (kvmi.rst, section 20): the control device /dev/kvmi,
 * its GUEST_ON/GUEST_OFF records, and the guest list the library keeps so
 * that a tool sees each guest come exactly once and go exactly once, even
 * when the kernel's queue overflows; plus the VMM's UUID and opt-out.
 *
 * The list: every guest whose ON the tool was given and whose OFF it was
 * not. It is rebuilt from KVMI_DEV_GET_GUESTS at the first dispatch and
 * after each OVERFLOW record, and the records whose seq that list already
 * accounts for are skipped (the rule of kvmi.rst, section 20.4).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

#define DISC_DEV	"/dev/kvmi"
#define DISC_BATCH	16

struct kvmi_disc {
	int fd;			/* /dev/kvmi, O_NONBLOCK */
	bool synced;		/* the list was built; false: rebuild it */
	uint64_t sync_seq;	/* skip the records up to this seq */

	/* Records read from the kernel, not handed over yet. */
	struct kvmi_guest_record buf[DISC_BATCH];
	unsigned int pos, nr;

	/* The guests the tool knows of: their ON records. */
	struct kvmi_guest_record *known;
	uint32_t nr_known, room;
};

/* kvmi_disc_open() - open /dev/kvmi (CAP_SYS_ADMIN). */
__cold int kvmi_disc_open(struct kvmi_disc **discp)
{
	struct kvmi_discovery_info info;
	struct kvmi_disc *disc;
	int r;

	if (!discp)
		return -EINVAL;
	disc = calloc(1, sizeof(*disc));
	if (!disc)
		return -ENOMEM;
	disc->fd = open(DISC_DEV, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (disc->fd < 0) {
		r = -errno;
		free(disc);
		return r;
	}
	r = kvmi__ioctl(disc->fd, KVMI_DEV_GET_INFO, &info);
	if (!r && info.record_size != sizeof(struct kvmi_guest_record))
		r = -EPROTO;
	if (r) {
		close(disc->fd);
		free(disc);
		return r;
	}
	*discp = disc;
	return 0;
}

/* kvmi_disc_close() - close the device; opened doms stay open. */
__cold int kvmi_disc_close(struct kvmi_disc *disc)
{
	if (!disc)
		return -EINVAL;
	close(disc->fd);
	free(disc->known);
	free(disc);
	return 0;
}

int kvmi_disc_fd(const struct kvmi_disc *disc)
{
	return disc ? disc->fd : -EINVAL;
}

/* The raw KVMI_DEV_GET_GUESTS: records written, or -errno. */
int kvmi_disc_get_guests(struct kvmi_disc *disc,
			 struct kvmi_guest_record *recs, uint32_t count,
			 uint32_t *total, uint64_t *seq)
{
	struct kvmi_guest_list gl = {
		.guests = (uintptr_t)recs,
		.count = count,
	};
	int r;

	if (!disc || (count && !recs))
		return -EINVAL;
	r = kvmi__ioctl(disc->fd, KVMI_DEV_GET_GUESTS, &gl);
	if (r)
		return r;
	if (total)
		*total = gl.total;
	if (seq)
		*seq = gl.seq;
	return gl.count;
}

static int known_find(const struct kvmi_disc *disc, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < disc->nr_known; i++)
		if (disc->known[i].id == id)
			return i;
	return -1;
}

static int known_add(struct kvmi_disc *disc,
		     const struct kvmi_guest_record *rec)
{
	struct kvmi_guest_record *k;
	uint32_t room;

	if (disc->nr_known == disc->room) {
		room = disc->room ? 2 * disc->room : 16;
		k = realloc(disc->known, room * sizeof(*k));
		if (!k)
			return -ENOMEM;
		disc->known = k;
		disc->room = room;
	}
	disc->known[disc->nr_known++] = *rec;
	return 0;
}

static void known_del(struct kvmi_disc *disc, uint32_t i)
{
	disc->known[i] = disc->known[--disc->nr_known];
}

/* The present guests, exact as of *seq, in a malloc()ed array. */
static int list_guests(struct kvmi_disc *disc,
		       struct kvmi_guest_record **recsp, uint32_t *nr,
		       uint64_t *seq)
{
	struct kvmi_guest_record *recs = NULL, *p;
	uint32_t total = 0, room = 0;
	int r;

	for (;;) {
		r = kvmi_disc_get_guests(disc, recs, room, &total, seq);
		if (r < 0) {
			free(recs);
			return r;
		}
		if (total <= room) {
			*recsp = recs;
			*nr = r;
			return 0;
		}
		/* More guests than room: grow, ask again. */
		room = total + 16;
		p = realloc(recs, room * sizeof(*recs));
		if (!p) {
			free(recs);
			return -ENOMEM;
		}
		recs = p;
	}
}

static bool listed(const struct kvmi_guest_record *recs, uint32_t nr,
		   uint64_t id)
{
	uint32_t i;

	for (i = 0; i < nr; i++)
		if (recs[i].id == id)
			return true;
	return false;
}

/*
 * Rebuild the list from GET_GUESTS: an OFF for each known guest no longer
 * listed, an ON for each listed guest not known. If @fn fails midway, the
 * next dispatch starts over (what was handed over is in the list already).
 */
static int resync(struct kvmi_disc *disc, kvmi_guest_fn fn, void *arg,
		  int *calls)
{
	struct kvmi_guest_record *recs, off;
	uint64_t seq;
	uint32_t i, nr;
	int r;

	disc->synced = false;
	r = list_guests(disc, &recs, &nr, &seq);
	if (r)
		return r;
	for (i = 0; i < disc->nr_known; ) {
		if (listed(recs, nr, disc->known[i].id)) {
			i++;
			continue;
		}
		off = disc->known[i];
		off.type = KVMI_GUEST_OFF;
		off.seq = seq;
		known_del(disc, i);
		(*calls)++;
		r = fn(disc, &off, arg);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < nr; i++) {
		if (known_find(disc, recs[i].id) >= 0)
			continue;
		r = known_add(disc, &recs[i]);
		if (r)
			goto out;
		(*calls)++;
		r = fn(disc, &recs[i], arg);
		if (r < 0)
			goto out;
	}
	disc->synced = true;
	disc->sync_seq = seq;
	r = 0;
out:
	free(recs);
	return r;
}

/* Hand one record read from the kernel to @fn, if it is news. */
static int deliver(struct kvmi_disc *disc,
		   const struct kvmi_guest_record *rec, kvmi_guest_fn fn,
		   void *arg, int *calls)
{
	int i, r;

	if (rec->type == KVMI_GUEST_OVERFLOW)
		return resync(disc, fn, arg, calls);
	if (rec->seq <= disc->sync_seq)
		return 0;	/* the list already accounts for it */
	i = known_find(disc, rec->id);
	switch (rec->type) {
	case KVMI_GUEST_ON:
		if (i >= 0)
			return 0;
		r = known_add(disc, rec);
		if (r)
			return r;
		break;
	case KVMI_GUEST_OFF:
		if (i < 0)
			return 0;
		known_del(disc, i);
		break;
	default:
		return 0;	/* a later kernel's record: not for us */
	}
	(*calls)++;
	return fn(disc, rec, arg);
}

/*
 * kvmi_disc_dispatch() - hand every new guest (ON) and every guest gone
 * (OFF) to @fn; never blocks. Returns how many records were handed over.
 */
int kvmi_disc_dispatch(struct kvmi_disc *disc, kvmi_guest_fn fn, void *arg)
{
	struct kvmi_guest_record *rec;
	int calls = 0, r;
	ssize_t n;

	if (!disc || !fn)
		return -EINVAL;
	if (!disc->synced) {
		r = resync(disc, fn, arg, &calls);
		if (r < 0)
			return r;
	}
	for (;;) {
		if (disc->pos == disc->nr) {
			n = read(disc->fd, disc->buf, sizeof(disc->buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return calls;
			if (n < 0)
				return -errno;
			disc->pos = 0;
			disc->nr = n / sizeof(disc->buf[0]);
		}
		rec = &disc->buf[disc->pos++];
		r = deliver(disc, rec, fn, arg, &calls);
		if (r < 0)
			return r;
	}
}

/* The raw KVMI_DEV_OPEN_GUEST: an introspection fd, or -errno. */
int kvmi_disc_open_guest(struct kvmi_disc *disc, uint64_t id)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_RING,
	};
	struct kvmi_open_guest og = {
		.id = id,
		.open = (uintptr_t)&op,
	};
	int r;

	if (!disc)
		return -EINVAL;
	r = ioctl(disc->fd, KVMI_DEV_OPEN_GUEST, &og);
	return r < 0 ? -errno : r;
}

/* kvmi_dom_open_guest() - open guest @id and wrap it in a dom. */
__cold int kvmi_dom_open_guest(struct kvmi_disc *disc, uint64_t id,
			       struct kvmi_dom **domp)
{
	int fd, r;

	if (!domp)
		return -EINVAL;
	fd = kvmi_disc_open_guest(disc, id);
	if (fd < 0)
		return fd;
	r = kvmi_dom_from_fd(fd, domp);
	if (r)
		close(fd);
	return r;
}

/* The VMM's side (VM fd, the VM's creator only). */
int kvmi_vm_set_uuid(int vm_fd, const uint8_t uuid[16])
{
	struct kvmi_guest_uuid u = {};

	if (!uuid)
		return -EINVAL;
	memcpy(u.uuid, uuid, sizeof(u.uuid));
	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_SET_UUID, &u);
}

int kvmi_vm_get_uuid(int vm_fd, uint8_t uuid[16])
{
	struct kvmi_guest_uuid u;
	int r;

	if (!uuid)
		return -EINVAL;
	r = kvmi__ioctl(vm_fd, KVM_INTROSPECTION_GET_UUID, &u);
	if (!r)
		memcpy(uuid, u.uuid, sizeof(u.uuid));
	return r;
}

/* 1 if an introspection fd is open when it returns, else 0; or -errno. */
int kvmi_vm_opt_out(int vm_fd)
{
	struct kvmi_opt_out oo = {};
	int r = ioctl(vm_fd, KVM_INTROSPECTION_OPT_OUT, &oo);

	return r < 0 ? -errno : r;
}
