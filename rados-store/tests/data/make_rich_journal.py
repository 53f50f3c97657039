#!/usr/bin/python3
"""Write a journal through real librbd (Ceph 16.2) that is richer than the shared vectors:
several tags (mirror demote/promote), small journal objects (order 12, so many object sets),
data writes of several sizes, flush, discard, write-zeroes, snapshot create/rename/protect/
unprotect/remove, metadata set/remove, resize, feature update, `rbd bench` with 4 writer threads
and an image rename.
A never-committing client 'HOLD' is registered first so nothing is trimmed.
usage: make_rich_journal.py IMAGE   (CEPH_CONF set; pool 'rbd'); prints the image (journal) id."""
import hashlib
import os
import struct
import subprocess
import sys

import rados
import rbd

name = sys.argv[1]
cl = rados.Rados(conffile=os.environ['CEPH_CONF'])
cl.conf_set('rbd_journal_order', '12')        # 4 KiB objects: many object sets
cl.conf_set('rbd_journal_splay_width', '4')
cl.connect()
io = cl.open_ioctx('rbd')
r = rbd.RBD()
try:
    r.mirror_mode_set(io, rbd.RBD_MIRROR_MODE_IMAGE)
except rbd.Error:
    pass
r.create(io, name, 16 << 20, old_format=False,
         features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK | rbd.RBD_FEATURE_JOURNALING)
img = rbd.Image(io, name)
img_id = img.id()
img.close()


def s(b):
    return struct.pack('<I', len(b)) + b


io.execute('journal.' + img_id, 'journal', 'client_register', s(b'HOLD') + s(b''))


def pat(seed, n):
    h = hashlib.sha256(seed.encode()).digest()
    return (h * (n // len(h) + 1))[:n]


img = rbd.Image(io, name)
img.mirror_image_enable(rbd.RBD_MIRROR_IMAGE_MODE_JOURNAL)
img.write(pat('a', 4096), 0)
img.write(pat('b', 1000), 8192 + 3)            # unaligned
img.write(pat('c', 2500), 1 << 20)             # larger than one 4 KiB object can hold in one entry? no: fits
img.flush()
img.discard(1 << 20, 4096)
img.write_zeroes(2 << 20, 8192)
img.create_snap('s1')
img.rename_snap('s1', 's1r')
img.protect_snap('s1r')
img.unprotect_snap('s1r')
img.metadata_set('conf_rbd_cache', 'false')
img.metadata_remove('conf_rbd_cache')
img.resize(24 << 20)
img.update_features(rbd.RBD_FEATURE_OBJECT_MAP, True)
img.mirror_image_demote()                      # tag: demoted
img.mirror_image_promote(False)                # tag: primary again
for i in range(12):
    img.write(pat('d%d' % i, 512 * (i % 4 + 1)), (i * 37 % 200) * 4096)
img.remove_snap('s1r')
img.mirror_image_demote()
img.mirror_image_promote(False)
img.write(pat('e', 3000), 5 * 4096 + 11)
img.flush()
img.close()
# Many writers: rbd bench's 4 concurrent threads (sequential, non-overlapping 4 KiB writes).
subprocess.run(['rbd', '-c', os.environ['CEPH_CONF'], 'bench', '--io-type', 'write',
                '--io-size', '4096', '--io-threads', '4', '--io-total', '131072',
                '--io-pattern', 'seq', 'rbd/' + name],
               check=True, stdout=subprocess.DEVNULL)
r.rename(io, name, name + '-renamed')
img = rbd.Image(io, name + '-renamed')
img.write(pat('f', 700), 9 * 4096)
img.close()
io.close()
cl.shutdown()
print(img_id)
