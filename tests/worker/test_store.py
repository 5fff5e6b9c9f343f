"""The result store over real fsspec file systems: a folder (plain path and ``file://``),
``memory://``, and ``s3://`` through s3fs against moto's S3 server on loopback (over HTTP, as
on a real cloud). Corrupt and truncated entries read as misses; two worker processes writing
one key at once leave one good copy."""

from __future__ import annotations

import os
import uuid

import pytest

from jupyter_remote.worker.store import MAGIC, Store, pack, unpack


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3 API served by moto on 127.0.0.1, with a bucket; dummy credentials."""
    from moto.server import ThreadedMotoServer

    keep = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("results")
    yield endpoint
    server.stop()
    for k, v in keep.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(params=["path", "file", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "path":
        return Store(str(tmp_path / "store"))
    if request.param == "file":
        return Store((tmp_path / "store").as_uri())
    if request.param == "memory":
        return Store(f"memory://store-{uuid.uuid4().hex}")
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = Store(f"s3://results/{uuid.uuid4().hex}", client_kwargs={"endpoint_url": endpoint})
    s3.fs.invalidate_cache()
    return s3


def test_put_get_has_list_delete(store):
    assert store.get("k1") is None and not store.has("k1") and store.list() == []
    store.put("k1", b"one", {"kind": "function", "label": "f"})
    store.put("k2", b"two" * 1000)
    assert store.get("k1") == b"one" and store.has("k1")
    assert store.get("k2") == b"two" * 1000
    records = {r["key"]: r for r in store.list()}
    assert set(records) == {"k1", "k2"}
    assert records["k1"]["kind"] == "function" and records["k1"]["size"] == 3
    assert records["k2"]["size"] == 3000
    assert store.delete("k1") and not store.delete("k1")
    assert store.get("k1") is None and [r["key"] for r in store.list()] == ["k2"]
    assert store.clear() == 1 and store.list() == []


def test_a_put_replaces_the_entry(store):
    store.put("same", b"first")
    store.put("same", b"second")
    assert store.get("same") == b"second"
    assert [r["key"] for r in store.list()] == ["same"]


def test_truncated_or_corrupt_entries_are_misses(store):
    body = os.urandom(4096)
    store.put("x", body)  # a good entry first, then damaged in place
    path = store._object("x")
    for bad in (pack(body)[:-1], pack(body)[:10], pack(body)[:-5] + b"XXXXX", body, b""):
        store.fs.pipe_file(path, bad)
        store.fs.invalidate_cache()
        assert store.get("x") is None, bad[:20]
    # and a length that matches with a wrong byte inside: the checksum catches it
    broken = bytearray(pack(body))
    broken[-100] ^= 0xFF
    store.fs.pipe_file(path, bytes(broken))
    assert store.has("x")  # has() checks the length only...
    assert store.get("x") is None  # ...get() the content
    store.put("x", body)
    assert store.get("x") == body


def test_keys_are_checked():
    with pytest.raises(ValueError, match="store key"):
        Store("memory://k").get("../escape")


def test_least_recently_used_entries_go_beyond_max_size(tmp_path):
    store = Store(str(tmp_path), max_size="2.5kB")
    store.put("a", bytes(1000))
    store.put("b", bytes(1000))
    assert store.get("a") is not None  # a is now used more recently than b
    store.put("c", bytes(1000))
    assert sorted(r["key"] for r in store.list()) == ["a", "c"]
    assert store.get("b") is None


def test_pack_unpack():
    assert unpack(pack(b"abc")) == b"abc"
    assert pack(b"").startswith(MAGIC) and unpack(pack(b"")) == b""


def _write_many(url: str, key: str, seed: int, rounds: int) -> int:
    """Runs in a worker process: put one key over and over with its own body."""
    from jupyter_remote.worker.store import Store

    store = Store(url)
    body = bytes([seed]) * 3_000_000
    for _ in range(rounds):
        store.put(key, body)
    return os.getpid()


def test_two_worker_processes_writing_one_key_leave_one_good_copy(client, tmp_path):
    url = (tmp_path / "shared").as_uri()
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) >= 2, "the embedded cluster should have two worker processes"
    futures = [
        client.submit(_write_many, url, "contended", seed, 20, workers=[w], pure=False)
        for seed, w in zip((1, 2), workers[:2])
    ]
    store = Store(url)
    seen = 0
    while not all(f.done() for f in futures):  # a reader meanwhile sees whole entries only
        body = store.get("contended")
        if body is not None:
            assert body in (b"\x01" * 3_000_000, b"\x02" * 3_000_000)
            seen += 1
    pids = client.gather(futures)
    assert len(set(pids)) == 2  # two processes really wrote
    assert store.get("contended") in (b"\x01" * 3_000_000, b"\x02" * 3_000_000)
    assert [r["key"] for r in store.list()] == ["contended"]
    leftovers = [p for p in os.listdir(tmp_path / "shared" / "objects") if p != "contended"]
    assert leftovers == []  # no temporary files left behind
