# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB backups: mongodump when installed, otherwise a native dump in mongodump's layout.

Layout inside a backup directory (what ``mongorestore --dir <backup>/dump`` reads)::

    dump/<db>/<coll>.bson[.gz]             documents as raw BSON, concatenated
    dump/<db>/<coll>.metadata.json[.gz]    canonical extended JSON: options, indexes, uuid,
                                           collectionName, type ("collection" / "view")

The native dump streams raw BSON batches from the server (``find_raw_batches``) straight to the
file: documents are never decoded. Views get a metadata file only (viewOn, pipeline). The native
restore reads the same layout and inserts the raw documents unchanged.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DatabaseMissingError, DbopsError

DUMP_DIR = "dump"
TOOLS = ("auto", "mongodump", "native")
GZIP_LEVEL = 6
_BATCH_BYTES = 8 * 1024 * 1024
_SAFE_NAME = "$&+,:;=@!'()*-._~"


def escape_name(name: str) -> str:
    """File name for a collection, escaped like mongodump (percent-encoding of unsafe characters)."""
    return urllib.parse.quote(name, safe=_SAFE_NAME)


def unescape_name(name: str) -> str:
    return urllib.parse.unquote(name)


def _bson() -> Any:
    _mongodb.require_driver()
    import bson  # noqa: PLC0415 - part of pymongo, imported once pymongo is known to exist
    import bson.json_util  # noqa: PLC0415
    import bson.raw_bson  # noqa: PLC0415

    return bson


def _open_write(path: str, gz: bool) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    raw = os.fdopen(fd, "wb", buffering=1024 * 1024)
    if gz:
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL,  # type: ignore[return-value]
                             mtime=0)
    return raw


def _close_write(handle: Any) -> None:
    """Close a file opened by _open_write, flushed and fsynced."""
    inner = getattr(handle, "fileobj", None)
    if inner is not None:
        handle.close()
        inner.flush()
        os.fsync(inner.fileno())
        inner.close()
    else:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()


def _write_file(path: str, data: bytes, gz: bool) -> None:
    handle = _open_write(path, gz)
    try:
        handle.write(data)
    finally:
        _close_write(handle)


def count_bson_documents(data: bytes) -> int:
    """Number of documents in a buffer of concatenated BSON documents."""
    count, pos, end = 0, 0, len(data)
    while pos < end:
        pos += int.from_bytes(data[pos:pos + 4], "little")
        count += 1
    return count


def metadata_document(info: dict[str, Any], indexes: list[dict[str, Any]]) -> dict[str, Any]:
    """mongodump's metadata for one collection or view (field order as mongodump writes it)."""
    uuid_value = (info.get("info") or {}).get("uuid")
    uuid_hex = ""
    if uuid_value is not None:
        raw = getattr(uuid_value, "bytes", None) or bytes(uuid_value)
        uuid_hex = raw.hex()
    cleaned = [{k: v for k, v in index.items() if k != "ns"} for index in indexes]
    return {"options": info.get("options") or {}, "indexes": cleaned, "uuid": uuid_hex,
            "collectionName": info["name"], "type": info.get("type", "collection")}


def metadata_json(meta: dict[str, Any]) -> bytes:
    bson = _bson()
    return bson.json_util.dumps(meta, json_options=bson.json_util.CANONICAL_JSON_OPTIONS).encode()


def _dumpable(info: dict[str, Any]) -> bool:
    name = info["name"]
    return not name.startswith("system.") or name == "system.js"


def _stream_collection(coll: Any, path: str, gz: bool) -> int:
    """Write a collection's raw BSON batches to ``path``; returns the number of documents.

    With gzip, compression runs in a writer thread (zlib releases the GIL), so fetching the next
    batch from the server overlaps with compressing the previous one.
    """
    handle = _open_write(path, gz)
    count = 0
    try:
        if not gz:
            for batch in coll.find_raw_batches({}, batch_size=10000):
                handle.write(batch)
                count += count_bson_documents(batch)
            return count
        batches: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                while True:
                    item = batches.get()
                    if item is None:
                        return
                    handle.write(item)
            except BaseException as exc:  # re-raised in the reading thread
                failure.append(exc)
                while batches.get() is not None:
                    pass

        thread = threading.Thread(target=writer, name="dbops-gzip-writer", daemon=True)
        thread.start()
        try:
            for batch in coll.find_raw_batches({}, batch_size=10000):
                if failure:
                    break
                batches.put(batch)
                count += count_bson_documents(batch)
        finally:
            batches.put(None)
            thread.join()
        if failure:
            raise failure[0]
        return count
    finally:
        _close_write(handle)


def native_dump(client: Any, database: str, out_dir: str, gz: bool) -> dict[str, Any]:
    """Dump ``database`` into ``out_dir/<database>/``; return counts and the views seen."""
    bson = _bson()
    raw_options = bson.codec_options.CodecOptions(document_class=bson.raw_bson.RawBSONDocument)
    db = client[database]
    target = os.path.join(out_dir, database)
    os.makedirs(target, mode=0o700)
    counts: dict[str, int] = {}
    views: list[str] = []
    suffix = ".gz" if gz else ""
    for info in sorted(db.list_collections(), key=lambda i: i["name"]):
        if not _dumpable(info):
            continue
        name = info["name"]
        base = os.path.join(target, escape_name(name))
        if info.get("type", "collection") == "view":
            _write_file(f"{base}.metadata.json{suffix}", metadata_json(metadata_document(info, [])), gz)
            views.append(name)
            continue
        coll = db.get_collection(name, codec_options=raw_options)
        indexes = [dict(ix) for ix in db[name].list_indexes()]
        counts[name] = _stream_collection(coll, f"{base}.bson{suffix}", gz)
        _write_file(f"{base}.metadata.json{suffix}", metadata_json(metadata_document(info, indexes)), gz)
    return {"counts": counts, "views": views}


# --------------------------------------------------------------------------- mongodump / mongorestore

@contextlib.contextmanager
def tool_config(params: dict[str, Any]) -> Iterator[list[str]]:
    """Connection arguments for mongodump/mongorestore; secrets go in a 0600 --config file."""
    kwargs = _mongodb.client_kwargs(params)
    args: list[str] = []
    secrets: dict[str, str] = {}
    if params.get("login_uri"):
        secrets["uri"] = str(params["login_uri"])
    else:
        args += [f"--host={kwargs['host']}", f"--port={kwargs['port']}"]
    if params.get("login_user"):
        args += [f"--username={params['login_user']}",
                 f"--authenticationDatabase={params.get('login_database') or 'admin'}"]
        if params.get("login_password") is not None:
            secrets["password"] = str(params["login_password"])
    if params.get("tls"):
        args.append("--ssl")
        if params.get("tls_ca_file"):
            args.append(f"--sslCAFile={params['tls_ca_file']}")
        if params.get("tls_certificate_key_file"):
            args.append(f"--sslPEMKeyFile={params['tls_certificate_key_file']}")
        if params.get("tls_allow_invalid_certificates"):
            args.append("--sslAllowInvalidCertificates")
    private = tempfile.mkdtemp(prefix="dbops-mongo-")
    try:
        os.chmod(private, 0o700)
        if secrets:
            config = os.path.join(private, "tool.yaml")
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                for key, value in secrets.items():
                    handle.write(f"{key}: {json.dumps(value)}\n")
            args.append(f"--config={config}")
        yield args
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _run_tool(cmd: list[str], action: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                          umask=0o077)
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[-2000:] or f"exit code {proc.returncode}"
        raise DbopsError(f"{action}: {detail}")
    return proc.stderr


def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().splitlines()[0] if out.strip() else ""


def choose_tool(tool: str, path: str | None, name: str = "mongodump") -> str | None:
    """Path of mongodump/mongorestore to use, or None for the native implementation."""
    if tool == "native":
        return None
    found = path or shutil.which(name)
    if found and os.access(found, os.X_OK):
        return found
    if tool == "mongodump":
        raise DbopsError(f"find {name}: not installed (install MongoDB Database Tools or use tool: native)")
    return None


def _iter_dump_files(directory: str) -> Iterator[tuple[str, str, bool]]:
    """(collection name, metadata path, gzip) for every collection/view in a dump directory."""
    for entry in sorted(os.listdir(directory)):
        for suffix, gz in ((".metadata.json.gz", True), (".metadata.json", False)):
            if entry.endswith(suffix):
                yield unescape_name(entry[: -len(suffix)]), os.path.join(directory, entry), gz
                break


def _read_maybe_gz(path: str, gz: bool) -> bytes:
    opener = gzip.open if gz else open
    with opener(path, "rb") as handle:
        return handle.read()


def iter_bson_file(path: str, gz: bool) -> Iterator[bytes]:
    """Raw documents of a .bson file, one by one, without decoding them."""
    opener = gzip.open if gz else open
    with opener(path, "rb") as handle:
        while True:
            head = handle.read(4)
            if not head:
                return
            size = int.from_bytes(head, "little")
            body = handle.read(size - 4) if len(head) == 4 and size >= 5 else b""
            if len(head) < 4 or len(body) != size - 4:
                raise DbopsError(f"read {path}: truncated BSON document")
            yield head + body


def dump_counts(db_dir: str) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    views: list[str] = []
    for name, meta_path, gz in _iter_dump_files(db_dir):
        meta = json.loads(_read_maybe_gz(meta_path, gz))
        if meta.get("type") == "view":
            views.append(name)
            continue
        bson_path = os.path.join(db_dir, escape_name(name) + (".bson.gz" if gz else ".bson"))
        counts[name] = sum(1 for _doc in iter_bson_file(bson_path, gz)) if os.path.exists(bson_path) else 0
    return counts, views


# --------------------------------------------------------------------------- backup

def backup_option_spec() -> dict[str, Any]:
    """The backup options of mongodb_backup (argument spec), also read from dbops-backup's config."""
    return {
        "database": {"type": "str", "required": True},
        "gzip": {"type": "bool", "default": True},
        "tool": {"type": "str", "default": "auto", "choices": list(TOOLS)},
        "mongodump_path": {"type": "path"},
        "min_interval": {"type": "str"},
    }


def plan_backup(options: dict[str, Any], tool_path: str | None) -> dict[str, Any]:
    gz = options.get("gzip", True)
    if tool_path:
        cmd = f"{tool_path} --db={options['database']} --out=<root>/<id>.partial/dump"
        cmd += " --gzip" if gz else ""
    else:
        cmd = (f"native dump of {options['database']} (pymongo raw BSON) into <root>/<id>.partial/dump/"
               f"{options['database']}/" + ("<coll>.bson.gz" if gz else "<coll>.bson"))
    return {"engine": "mongodb", "database": options["database"],
            "tool": "mongodump" if tool_path else "native", "commands": [cmd]}


def database_names(client: Any) -> list[str]:
    return list(client.list_database_names())


def _native(client: Any, database: str, out_dir: str, gz: bool, action: str) -> dict[str, Any]:
    os.makedirs(out_dir, mode=0o700)
    try:
        return native_dump(client, database, out_dir, gz)
    except DbopsError:
        raise
    except OSError as exc:
        raise DbopsError(f"{action}: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise DbopsError(f"{action}: {_mongodb.error_text(exc)}") from exc


def _require_database(client: Any, database: str) -> None:
    action = f"back up MongoDB database {database}"
    try:
        exists = database in database_names(client)
    except Exception as exc:  # pymongo errors: listDatabases refused and the like
        raise DbopsError(f"{action}: {_mongodb.error_text(exc)}") from exc
    if not exists:
        raise DatabaseMissingError(f"{action}: the database does not exist")


def require_database(params: dict[str, Any], database: str) -> None:
    """Connect and check that ``database`` exists (read-only)."""
    client = _mongodb.connect(params)
    try:
        _require_database(client, database)
    finally:
        client.close()


def backup(params: dict[str, Any], root: str, options: dict[str, Any]) -> dict[str, Any]:
    """Dump one database into a new backup under ``root``; return the manifest."""
    database = options["database"]
    gz = bool(options.get("gzip", True))
    catalog.check_root(root, writable=True)
    tool_path = choose_tool(options.get("tool") or "auto", options.get("mongodump_path"))
    client = _mongodb.connect(params)
    action = f"back up MongoDB database {database}"
    try:
        info = _mongodb.server_info(client)
        _require_database(client, database)
        with catalog.BackupWriter(root, "mongodb", database) as writer:
            out_dir = os.path.join(writer.partial, DUMP_DIR)
            if tool_path:
                with tool_config(params) as args:
                    cmd = [tool_path, *args, f"--db={database}", f"--out={out_dir}"]
                    if gz:
                        cmd.append("--gzip")
                    _run_tool(cmd, f"{action} with mongodump")
                counts, views = dump_counts(os.path.join(out_dir, database))
                tool = {"name": "mongodump", "path": tool_path, "version": tool_version(tool_path)}
            else:
                result = _native(client, database, out_dir, gz, action)
                counts, views = result["counts"], result["views"]
                import pymongo  # noqa: PLC0415 - present: connect() succeeded

                tool = {"name": "dbops-native", "version": f"pymongo {pymongo.version}"}
            manifest = {
                "format": "mongodump",
                "payload": f"{DUMP_DIR}/{database}",
                "gzip": gz,
                "tool": tool,
                "server_version": info["server_version"],
                "counts": counts,
                "views": views,
            }
            return writer.publish(manifest)
    finally:
        client.close()


# --------------------------------------------------------------------------- restore

def only_system_collections(names: list[str]) -> bool:
    """Whether a database with these collections holds no data of its own (``system.*`` only)."""
    return not [n for n in names if not n.startswith("system.")]


def _create_command(name: str, options: dict[str, Any]) -> dict[str, Any]:
    command: dict[str, Any] = {"create": name}
    command.update(options)
    return command


def _insert_bson_file(coll: Any, path: str, gz: bool) -> int:
    bson = _bson()
    count, size = 0, 0
    batch: list[Any] = []
    for raw in iter_bson_file(path, gz):
        batch.append(bson.raw_bson.RawBSONDocument(raw))
        size += len(raw)
        if size >= _BATCH_BYTES or len(batch) >= 10000:
            coll.insert_many(batch, ordered=True, bypass_document_validation=True)
            count += len(batch)
            batch, size = [], 0
    if batch:
        coll.insert_many(batch, ordered=True, bypass_document_validation=True)
        count += len(batch)
    return count


def _drop_existing(db: Any, existing: set[str], name: str, clean: bool, what: str) -> None:
    if name in existing:
        if not clean:
            raise DbopsError(f"restore {what} {db.name}.{name}: it already exists (set clean: true)")
        db.drop_collection(name)


def native_restore(client: Any, db_dir: str, target: str, clean: bool) -> dict[str, int]:
    """Restore one dumped database directory into ``target``; returns documents inserted per collection."""
    bson = _bson()
    db = client[target]
    existing = set(db.list_collection_names())
    entries = []
    for name, meta_path, gz in _iter_dump_files(db_dir):
        meta = bson.json_util.loads(_read_maybe_gz(meta_path, gz).decode())
        entries.append((name, meta, gz))
    counts: dict[str, int] = {}
    for name, meta, gz in entries:
        if meta.get("type") == "view":
            continue
        _drop_existing(db, existing, name, clean, "collection")
        db.command(_create_command(name, dict(meta.get("options") or {})))
        bson_path = os.path.join(db_dir, escape_name(name) + (".bson.gz" if gz else ".bson"))
        coll = db.get_collection(name)
        counts[name] = _insert_bson_file(coll, bson_path, gz) if os.path.exists(bson_path) else 0
        indexes = [ix for ix in meta.get("indexes") or [] if ix.get("name") != "_id_"]
        if indexes:
            db.command({"createIndexes": name, "indexes": indexes})
    for name, meta, _gz in entries:
        if meta.get("type") == "view":
            _drop_existing(db, existing, name, clean, "view")
            db.command(_create_command(name, dict(meta.get("options") or {})))
    return counts


def restore(params: dict[str, Any], manifest: dict[str, Any], backup_dir: str, target: str, *,
            options: dict[str, Any], client: Any) -> None:
    """Restore a backup into ``target`` with mongorestore when installed, else natively."""
    db_dir = catalog.manifest_path(backup_dir, manifest, manifest.get("payload"))
    dump_dir = os.path.join(os.path.abspath(backup_dir), DUMP_DIR)
    if os.path.dirname(db_dir) != dump_dir:
        raise DbopsError(f"use payload of backup {manifest.get('id')}: {manifest.get('payload')!r} is not a "
                         f"database directory directly inside {DUMP_DIR}/")
    clean = bool(options.get("clean"))
    action = f"restore backup {manifest['id']} into MongoDB database {target}"
    tool = options.get("tool") or "auto"
    tool_path = choose_tool(tool, options.get("mongorestore_path"), "mongorestore")
    if tool_path:
        with tool_config(params) as args:
            cmd = [tool_path, *args, f"--nsFrom={manifest['database']}.*", f"--nsTo={target}.*",
                   f"--dir={dump_dir}", "--stopOnError"]
            if manifest.get("gzip"):
                cmd.append("--gzip")
            if clean:
                cmd.append("--drop")
            _run_tool(cmd, f"{action} with mongorestore")
        return
    try:
        native_restore(client, db_dir, target, clean)
    except DbopsError:
        raise
    except OSError as exc:
        raise DbopsError(f"{action}: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise DbopsError(f"{action}: {_mongodb.error_text(exc)}") from exc


def counts_in(client: Any, database: str) -> dict[str, int]:
    db = client[database]
    counts = {}
    for info in db.list_collections():
        if info.get("type", "collection") == "view" or not _dumpable(info):
            continue
        counts[info["name"]] = int(db[info["name"]].count_documents({}))
    return counts


def restore_test(params: dict[str, Any], manifest: dict[str, Any], backup_dir: str, scratch: str,
                 tool: str = "auto") -> dict[str, Any]:
    """Restore into a new scratch database, count documents, drop it. Returns counts and timings."""
    client = _mongodb.connect(params)
    try:
        if scratch in database_names(client):
            raise DbopsError(f"restore-test backup {manifest['id']}: the scratch database {scratch} already "
                             "exists (drop it or choose another scratch_database)")
        started = time.monotonic()
        try:
            restore(params, manifest, backup_dir, scratch, options={"tool": tool}, client=client)
            rto = time.monotonic() - started
            counts = counts_in(client, scratch)
        finally:
            client.drop_database(scratch)
    finally:
        client.close()
    return {"counts": counts, "rto_s": round(rto, 3)}
