#!/usr/bin/env python3
"""Pack a root filesystem directory into a single-layer OCI image layout tarball.

    oci-archive.py <rootfs-dir> <image-name> <out.tar>
        [--entrypoint ARGV] [--cmd ARGV] [--env K=V ...] [--user U] [--workdir D]
        [--label K=V ...]

ARGV is a JSON array ('["ray-operator"]') or a single word. <image-name> is the full
reference, e.g. docker.io/rayproject/ray:2.47.1.

The tarball holds oci-layout, index.json (one manifest, annotated with
io.containerd.image.name=<image-name> and org.opencontainers.image.ref.name=<tag>) and
blobs/sha256/ with one gzip layer, the image config and the manifest, as
`ctr -n k8s.io images import <out.tar>` takes it. The layer keeps each file's mode, uid,
gid and mtime, symlinks and hard links; device files, sockets and FIFOs are left out (the
runtime provides /dev). Owner names are left empty: ids are what containers use.

Deterministic: the same rootfs and options give the same bytes (entries sorted, gzip
header without a time or name, the config's `created` from SOURCE_DATE_EPOCH, default 0).
Prints the manifest digest (what containerd reports as the image's digest) on stdout.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import time


class HashingWriter:
    """A write-only file that hashes and counts what goes through to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self):
        self.inner.flush()


def walk(root):
    """Paths below root relative to it, parents before children, sorted by name bytes."""
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(full), key=os.fsencode)
        children = []
        for name in names:
            crel = os.path.join(rel, name) if rel else name
            yield crel
            if stat.S_ISDIR(os.lstat(os.path.join(root, crel)).st_mode):
                children.append(crel)
        # Depth-first in name order: push in reverse so the smallest name is popped first.
        stack.extend(reversed(children))


def write_layer(root, layer_path):
    """Write the gzip layer of root to layer_path; return (diff_id, digest, size)."""
    skipped = 0
    with open(layer_path, "wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for rel in walk(root):
                    full = os.path.join(root, rel)
                    st = os.lstat(full)
                    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                        skipped += 1
                        continue
                    # gettarinfo turns a second path of a hard-linked inode into a link entry.
                    info = tar.gettarinfo(full, arcname=rel)
                    info.uname = info.gname = ""
                    info.mtime = int(st.st_mtime)
                    if info.isreg():
                        with open(full, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
    if skipped:
        print(f"oci-archive: left out {skipped} device/socket/fifo entries", file=sys.stderr)
    return "sha256:" + uncompressed.sha.hexdigest(), "sha256:" + compressed.sha.hexdigest(), compressed.size


def argv_value(s):
    if s.startswith("["):
        v = json.loads(s)
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise argparse.ArgumentTypeError(f"not a JSON array of strings: {s}")
        return v
    return [s]


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rootfs")
    p.add_argument("image")
    p.add_argument("out")
    p.add_argument("--entrypoint", type=argv_value)
    p.add_argument("--cmd", type=argv_value)
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--user")
    p.add_argument("--workdir")
    p.add_argument("--arch", default="amd64")
    a = p.parse_args()

    if not os.path.isdir(a.rootfs):
        p.error(f"{a.rootfs} is not a directory")
    for kv in a.env + a.label:
        if "=" not in kv:
            p.error(f"expected K=V, got {kv}")
    last = a.image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"

    tmp_layer = a.out + ".layer.tmp"
    started = time.monotonic()
    diff_id, layer_digest, layer_size = write_layer(a.rootfs, tmp_layer)

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {"Env": a.env}
    if a.entrypoint is not None:
        config["Entrypoint"] = a.entrypoint
    if a.cmd is not None:
        config["Cmd"] = a.cmd
    if a.user:
        config["User"] = a.user
    if a.workdir:
        config["WorkingDir"] = a.workdir
    if a.label:
        config["Labels"] = dict(kv.split("=", 1) for kv in a.label)
    image_config = canonical(
        {
            "architecture": a.arch,
            "os": "linux",
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "hack/images/oci-archive.py"}],
        }
    )
    config_digest = "sha256:" + hashlib.sha256(image_config).hexdigest()
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(image_config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
    )
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": {"architecture": a.arch, "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": a.image,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
    )

    tmp_out = a.out + ".tmp"
    with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
        add_bytes(tar, "index.json", index)
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        add_bytes(tar, "blobs/sha256/" + config_digest[7:], image_config)
        add_bytes(tar, "blobs/sha256/" + manifest_digest[7:], manifest)
        info = tarfile.TarInfo("blobs/sha256/" + layer_digest[7:])
        info.size = layer_size
        info.mode = 0o644
        with open(tmp_layer, "rb") as f:
            tar.addfile(info, f)
    os.unlink(tmp_layer)
    os.replace(tmp_out, a.out)
    print(
        f"oci-archive: {a.image}: layer {layer_size / 2**20:.1f} MiB gzip, "
        f"{time.monotonic() - started:.0f}s, manifest {manifest_digest}",
        file=sys.stderr,
    )
    print(manifest_digest)


if __name__ == "__main__":
    main()
