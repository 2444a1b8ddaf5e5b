"""The S3 server of the server profile: moto's, with its objects kept on disk across restarts.

Usage: python -m scripts.server.s3_server --port 59000 --state <dir> [--buckets "a b"]
       [--snapshot-seconds 30]

moto 5.2.5 keeps its state in memory only. Its recorder (MOTO_ENABLE_RECORDING, replayed at start)
is no store: the log keeps every request, reads and overwritten objects included, and a replayed
multipart upload fails (the replayed CreateMultipartUpload gets a new random UploadId, the recorded
UploadPart and CompleteMultipartUpload carry the old one). So this process runs moto's threaded
server and keeps a snapshot of the objects themselves in <dir>:

  objects/<sha256>  each object's bytes, once per content
  manifest.json     buckets, and per object: key, blob, size, ETag, LastModified, content type,
                    user metadata

A snapshot is taken every --snapshot-seconds (only new or changed objects are read: their ETag,
size or LastModified moved) and once more on SIGTERM/SIGINT before the server stops, so `make stop`
loses nothing and a crash loses at most the last interval. At start the snapshot is restored on a
private ephemeral port before the real port is bound: no client ever sees a half-restored store.
Objects come back oldest first with their LastModified (moto's object attribute: tools that
compare modification times see the same order as before). The bucket(s) named by --buckets are
created when missing. Versioning, ACLs and bucket policies are not kept (the project uses none).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.lake.storage import write_bytes_atomic

log = logging.getLogger("s3_server")

MANIFEST = "manifest.json"
FORMAT = 1


def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "moto"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "moto"),
        config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
    )


class Snapshot:
    """The objects of an S3 endpoint, mirrored into a folder (content-addressed blobs + manifest)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.blobs = state / "objects"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def manifest(self) -> dict[str, Any]:
        path = self.state / MANIFEST
        if not path.is_file():
            return {"format": FORMAT, "buckets": [], "objects": []}
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise RuntimeError(f"{path}: unknown snapshot format {data.get('format')!r}")
        return data

    def _store_blob(self, body: Any) -> tuple[str, int]:
        """Stream an object's body into objects/<sha256>; (digest, size)."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".incoming.")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.blobs / digest.hexdigest())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest.hexdigest(), size

    def take(self, client: Any) -> tuple[int, int]:
        """Mirror every bucket and object of `client`'s endpoint; (objects, objects read now)."""
        with self.lock:
            previous = {(o["bucket"], o["key"]): o for o in self.manifest()["objects"]}
            buckets = sorted(b["Name"] for b in client.list_buckets().get("Buckets", []))
            objects: list[dict[str, Any]] = []
            fetched = 0
            for bucket in buckets:
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for item in page.get("Contents", []):
                        key, modified = item["Key"], item["LastModified"].isoformat()
                        old = previous.get((bucket, key))
                        if (
                            old
                            and (old["etag"], old["size"], old["last_modified"])
                            == (item["ETag"], item["Size"], modified)
                            and (self.blobs / old["blob"]).is_file()
                        ):
                            objects.append(old)
                            continue
                        try:
                            got = client.get_object(Bucket=bucket, Key=key)
                        except client.exceptions.NoSuchKey:
                            continue  # deleted since the listing
                        blob, size = self._store_blob(got["Body"])
                        fetched += 1
                        objects.append(
                            {
                                "bucket": bucket,
                                "key": key,
                                "blob": blob,
                                "size": size,
                                "etag": got["ETag"],
                                "last_modified": got["LastModified"].isoformat(),
                                "content_type": got.get("ContentType"),
                                "metadata": got.get("Metadata") or {},
                            }
                        )
            self._write(buckets, objects)
            return len(objects), fetched

    def _write(self, buckets: list[str], objects: list[dict[str, Any]]) -> None:
        manifest = {"format": FORMAT, "buckets": buckets, "objects": objects}
        write_bytes_atomic(str(self.state / MANIFEST), json.dumps(manifest, indent=1).encode())
        keep = {o["blob"] for o in objects}
        for blob in self.blobs.iterdir():
            if blob.name not in keep and not blob.name.startswith("."):
                blob.unlink()

    def restore(self, client: Any, buckets: list[str]) -> int:
        """Put the snapshot's buckets and objects (oldest first) into `client`'s endpoint, and
        create `buckets` when missing; the number of objects restored."""
        with self.lock:
            manifest = self.manifest()
            for bucket in sorted(set(manifest["buckets"]) | set(buckets)):
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
            objects = sorted(manifest["objects"], key=lambda o: o["last_modified"])
            for obj in objects:
                extra = {"ContentType": obj["content_type"]} if obj.get("content_type") else {}
                with open(self.blobs / obj["blob"], "rb") as body:
                    put = client.put_object(
                        Bucket=obj["bucket"], Key=obj["key"], Body=body, Metadata=obj["metadata"], **extra
                    )
                _set_last_modified(obj["bucket"], obj["key"], obj["last_modified"])
                obj["etag"] = put["ETag"]  # a multipart ETag becomes the single PUT's
            self._write(sorted(set(manifest["buckets"]) | set(buckets)), objects)
            return len(objects)


_warned = False


def _set_last_modified(bucket: str, key: str, iso: str) -> None:
    """Give a restored object its original LastModified (moto's in-process object; moto keeps it
    naive UTC). Without it the restore still keeps the objects' order (oldest put first)."""
    global _warned
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
        assert stored is not None
        stored.last_modified = datetime.fromisoformat(iso).astimezone(UTC).replace(tzinfo=None)
    except Exception as exc:  # a moto whose internals moved: keep the order, say so once
        if not _warned:
            log.warning("restored objects get a new LastModified (%s: %s)", type(exc).__name__, exc)
            _warned = True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.server.s3_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="folder of the snapshot")
    parser.add_argument("--buckets", default="", help="buckets to create when missing (space-separated)")
    parser.add_argument("--snapshot-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    from moto.server import ThreadedMotoServer

    snapshot = Snapshot(args.state)
    private = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    private.start()
    host, port = private.get_host_and_port()
    restored = snapshot.restore(_client(f"http://{host}:{port}"), args.buckets.split())
    private.stop()
    log.info("restored %d objects from %s", restored, args.state)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    client = _client(f"http://{args.host}:{args.port}")
    log.info("serving S3 on http://%s:%d", args.host, args.port)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    failed = False
    while True:
        stopping = stop.wait(args.snapshot_seconds)
        try:
            total, fetched = snapshot.take(client)
            if fetched or stopping:
                log.info("snapshot: %d objects (%d read now)", total, fetched)
            failed = False
        except Exception:
            log.exception("snapshot failed; the previous one is kept")
            failed = True
        if stopping:
            break
    server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
