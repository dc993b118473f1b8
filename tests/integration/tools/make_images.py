#!/usr/bin/env python3
"""Generate the integration tests' container images without any registry.

Output (under --out):
  oci/            an OCI image layout (index.json refs: ocisingle, multiarch, big); its
                  blobs/sha256/ also holds every blob of the Docker images, so it is the one
                  place to find any generated blob by digest
  dir-dockerv2/   skopeo `dir:` copy of a Docker schema2 image (skopeo 1.9's `oci:` transport
  dir-busybox/    cannot hold Docker media types)
  images.json     what a test may check: per image its reference, transport source, manifest
                  digest and media type, and per platform the manifest, config and layers

Layers are tar+gzip of random bytes from a seeded PRNG: incompressible, so sizes on the wire
are real, and identical for the same seed, so digests are stable between runs.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

CREATED = "2024-01-01T00:00:00Z"
MiB = 1024 * 1024


class Blobs:
    """Content-addressed store in the OCI layout's blobs/sha256 directory."""

    def __init__(self, root):
        self.dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)

    def put(self, data: bytes) -> dict:
        hexdigest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.dir, hexdigest)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)
        return {"digest": "sha256:" + hexdigest, "size": len(data)}

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, digest.split(":", 1)[1])


def canonical_json(obj) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n"


def tar_bytes(entries) -> bytes:
    """entries: (name, kind, payload) with kind 'file' (bytes), 'dir' or 'symlink' (target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                info.mode = 0o777
                tar.addfile(info)
            else:
                info.size = len(payload)
                info.mode = 0o755 if name.startswith("bin/") else 0o644
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and no file name keep the output a function of the input only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=1, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


class Generator:
    def __init__(self, out, seed):
        self.out = out
        self.seed = seed
        self.blobs = Blobs(os.path.join(out, "oci"))

    def random_bytes(self, label, size) -> bytes:
        return random.Random(f"{self.seed}/{label}").randbytes(size)

    def layer(self, tar_data: bytes, media_type: str):
        """Store a gzip layer; returns (descriptor, diff_id)."""
        compressed = gzip_bytes(tar_data)
        desc = dict(mediaType=media_type, **self.blobs.put(compressed))
        return desc, "sha256:" + hashlib.sha256(tar_data).hexdigest()

    def random_layer(self, label, size, media_type):
        data = self.random_bytes(label, size)
        return self.layer(tar_bytes([("data", "dir", None), (f"data/{label}.bin", "file", data)]),
                          media_type)

    def image(self, layers, arch, cmd, manifest_type, config_type, variant=None):
        """Store config and manifest; returns (manifest descriptor, platform record)."""
        config = {
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
            "history": [{"created": CREATED, "created_by": "make_images.py"} for _ in layers],
        }
        if variant:
            config["variant"] = variant
        config_desc = dict(mediaType=config_type, **self.blobs.put(canonical_json(config)))
        manifest = {"schemaVersion": 2, "mediaType": manifest_type, "config": config_desc,
                    "layers": [desc for desc, _ in layers]}
        manifest_bytes = canonical_json(manifest)
        manifest_desc = dict(mediaType=manifest_type, **self.blobs.put(manifest_bytes))
        platform = {"os": "linux", "architecture": arch}
        if variant:
            platform["variant"] = variant
        record = dict(platform)
        record.update(
            media_type=manifest_type,
            digest=manifest_desc["digest"],
            size=manifest_desc["size"],
            config={"digest": config_desc["digest"], "size": config_desc["size"],
                    "media_type": config_type},
            layers=[{"digest": d["digest"], "size": d["size"], "media_type": d["mediaType"]}
                    for d, _ in layers],
        )
        return manifest_desc, record, platform

    def index(self, children) -> dict:
        manifests = []
        for desc, _, platform in children:
            entry = dict(desc)
            entry["platform"] = platform
            manifests.append(entry)
        data = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                               "manifests": manifests})
        return dict(mediaType=OCI_INDEX, **self.blobs.put(data))

    def dir_copy(self, name, manifest_desc, record):
        """A skopeo `dir:` directory: manifest.json plus blobs named by their hex digest."""
        path = os.path.join(self.out, f"dir-{name}")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "version"), "w", encoding="ascii") as f:
            f.write("Directory Transport Version: 1.1\n")
        blobs = [manifest_desc["digest"], record["config"]["digest"]] + [
            layer["digest"] for layer in record["layers"]]
        for i, digest in enumerate(blobs):
            target = "manifest.json" if i == 0 else digest.split(":", 1)[1]
            target = os.path.join(path, target)
            if os.path.exists(target):
                os.remove(target)
            os.link(self.blobs.path(digest), target)
        return "dir:" + path


def entry(reference, source, desc, platforms, **extra):
    name, tag = reference.rsplit(":", 1)
    record = {"reference": reference, "name": name, "tag": tag, "source": source,
              "digest": desc["digest"], "media_type": desc["mediaType"], "size": desc["size"],
              "platforms": platforms}
    record.update(extra)
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", default="dcp-integration-1")
    parser.add_argument("--busybox", default="/bin/busybox",
                        help="a static busybox binary for the runnable image")
    parser.add_argument("--big-size", type=int, default=50 * MiB,
                        help="bytes of random data in the big image (before tar and gzip)")
    parser.add_argument("--big-layers", type=int, default=1,
                        help="split the big image's data into this many layers")
    parser.add_argument("--lru-set", action="store_true",
                        help="also make library/lru-{pin,a,b,c}:v1, of 1 MiB each, b and c "
                             "sharing a 512 KiB layer (the eviction tests)")
    args = parser.parse_args()

    gen = Generator(args.out, args.seed)
    oci_dir = os.path.join(args.out, "oci")
    images = []
    oci_refs = []

    # (a) single-platform OCI image, two layers of 1-3 MB.
    layers = [gen.random_layer("ocisingle-0", 1 * MiB + 123_457, OCI_LAYER),
              gen.random_layer("ocisingle-1", 2 * MiB + 654_321, OCI_LAYER)]
    desc, record, _ = gen.image(layers, "amd64", ["/bin/true"], OCI_MANIFEST, OCI_CONFIG)
    oci_refs.append(("ocisingle", desc))
    images.append(entry("library/ocisingle:v1", f"oci:{oci_dir}:ocisingle", desc, [record]))

    # (b) Docker schema2 image, also pushed under a second repository: the two share blobs.
    layers = [gen.random_layer("dockerv2-0", 1 * MiB + 777, DOCKER_LAYER),
              gen.random_layer("dockerv2-1", 1 * MiB + 500_000, DOCKER_LAYER)]
    desc, record, _ = gen.image(layers, "amd64", ["/bin/true"], DOCKER_MANIFEST, DOCKER_CONFIG)
    source = gen.dir_copy("dockerv2", desc, record)
    images.append(entry("library/dockerv2:v1", source, desc, [record]))
    images.append(entry("library/dockerv2alias:v1", source, desc, [record]))

    # (c) OCI index for linux/amd64 and linux/arm64; the children share their first layer.
    shared = gen.random_layer("multiarch-shared", 700_000, OCI_LAYER)
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        own = gen.random_layer(f"multiarch-{arch}", 1 * MiB + 4096, OCI_LAYER)
        children.append(gen.image([shared, own], arch, ["/bin/true"], OCI_MANIFEST, OCI_CONFIG,
                                  variant))
    desc = gen.index(children)
    oci_refs.append(("multiarch", desc))
    images.append(entry("library/multiarch:v1", f"oci:{oci_dir}:multiarch", desc,
                        [record for _, record, _ in children]))

    # (d) a runnable linux/amd64 Docker image: static busybox as /bin/sh.
    with open(args.busybox, "rb") as f:
        busybox = f.read()
    layer = gen.layer(tar_bytes([("bin", "dir", None), ("bin/busybox", "file", busybox),
                                 ("bin/sh", "symlink", "busybox"), ("tmp", "dir", None)]),
                      DOCKER_LAYER)
    desc, record, _ = gen.image([layer], "amd64", ["/bin/sh", "-c", "echo hello-from-dcp"],
                                DOCKER_MANIFEST, DOCKER_CONFIG)
    source = gen.dir_copy("busybox", desc, record)
    images.append(entry("library/busybox:v1", source, desc, [record], runnable=True,
                        expected_output="hello-from-dcp"))

    # (e) big incompressible layers (one unless --big-layers), for concurrency, range and crash
    # tests and for bench/run.sh. Layer i is labelled big-i, so the first layer of a one-layer
    # image keeps its bytes whatever the count.
    count = max(1, args.big_layers)
    layers = [gen.random_layer(f"big-{i}", args.big_size // count + (i < args.big_size % count),
                               OCI_LAYER)
              for i in range(count)]
    desc, record, _ = gen.image(layers, "amd64", ["/bin/true"], OCI_MANIFEST, OCI_CONFIG)
    oci_refs.append(("big", desc))
    images.append(entry("library/big:v1", f"oci:{oci_dir}:big", desc, [record]))

    # (f) small images for eviction: one own layer each; b and c also share a layer.
    if args.lru_set:
        shared = gen.random_layer("lru-shared", 512 * 1024, OCI_LAYER)
        for name in ("pin", "a", "b", "c"):
            layers = [gen.random_layer(f"lru-{name}", 1 * MiB, OCI_LAYER)]
            if name in ("b", "c"):
                layers.append(shared)
            desc, record, _ = gen.image(layers, "amd64", ["/bin/true"], OCI_MANIFEST,
                                        OCI_CONFIG)
            oci_refs.append((f"lru-{name}", desc))
            images.append(entry(f"library/lru-{name}:v1", f"oci:{oci_dir}:lru-{name}", desc,
                                [record]))

    with open(os.path.join(oci_dir, "oci-layout"), "w", encoding="ascii") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}\n')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    for ref, desc in oci_refs:
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": ref}
        index["manifests"].append(d)
    with open(os.path.join(oci_dir, "index.json"), "wb") as f:
        f.write(canonical_json(index))

    with open(os.path.join(args.out, "images.json"), "w", encoding="utf-8") as f:
        json.dump({"seed": args.seed, "blobs_dir": gen.blobs.dir, "images": images}, f, indent=2)
    print(os.path.join(args.out, "images.json"))


if __name__ == "__main__":
    main()
