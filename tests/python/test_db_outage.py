"""The database goes away while requests flow: cached keys keep working, spend keeps
accumulating in memory, and everything is written when the database returns — no spend lost.

The outage is real: sluice reaches PostgreSQL through a TCP relay this test controls, and the
relay cuts every connection and refuses new ones for the length of the outage. The embedded
SQLite file is deleted under load, with its directory, and kept from coming back (a file stands
where the directory was) for the length of the outage.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import MASTER_KEY, start_gateway
from test_keys import ADMIN, chat, fresh_pg_database, keys_config, psql


class Relay:
    """A loopback TCP relay to PostgreSQL that can be cut and restored."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                # A connection made while the cut was happening must not outlive it.
                if not self.up:
                    client.close()
                    server.close()
                    continue
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.up = False
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns.clear()

    def restore(self):
        self.up = True

    def close(self):
        self.cut()
        self.listener.close()


def db_totals(db: str, token: str) -> tuple[float, int]:
    # One statement, so both figures come from the same snapshot (two queries could straddle a
    # commit and pair the old spend with the new row count).
    out = psql(
        f"SELECT (SELECT spend FROM sluice_keys WHERE token = '{token}'), "
        f"(SELECT count(*) FROM sluice_spend_logs WHERE api_key = '{token}')",
        db,
    )
    spend, rows = out.split("|")
    return float(spend or 0), int(rows)


def gauges(p) -> dict[str, float]:
    """The unlabelled series of the gateway's /metrics, by name."""
    text = requests.get(p.url + "/metrics", timeout=10).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line
    }


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last[0]:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: still {last} after {timeout}s")


def test_no_spend_is_lost_while_the_database_is_down(log_dir, mock):
    db = fresh_pg_database()
    relay = Relay()
    url = f"postgresql://root@127.0.0.1:{relay.port}/{db}"
    p = start_gateway(log_dir, "db-outage", keys_config(mock.url, url))
    try:
        r = requests.post(p.url + "/key/generate", headers=ADMIN, json={"key_alias": f"outage-{uuid.uuid4().hex[:6]}"}, timeout=10)
        assert r.status_code == 200, r.text
        key, token = r.json()["key"], r.json()["token"]
        costs = []
        for _ in range(5):
            r = chat(p, key)
            assert r.status_code == 200, r.text
            costs.append(float(r.headers["x-litellm-response-cost"]))
        wait_for(lambda: (db_totals(db, token)[1] == 5, db_totals(db, token)), 10, "first batch written")

        relay.cut()
        for _ in range(20):
            r = chat(p, key)
            assert r.status_code == 200, f"a cached key must keep working while the database is down: {r.text}"
            costs.append(float(r.headers["x-litellm-response-cost"]))
        # The failed writes show in readiness.
        ready = wait_for(
            lambda: ((b := requests.get(p.url + "/health/readiness", timeout=10).json())["db"] == "Not connected", b),
            15,
            "readiness reports the outage",
        )[1]
        assert ready["status"] == "degraded", ready
        # And in the metrics dashboards read: the database down, the spend and its rows waiting.
        down = gauges(p)
        assert down["sluice_database_up"] == 0, down
        assert down["litellm_in_memory_spend_update_queue_size"] >= 1, down
        assert down["litellm_in_memory_daily_spend_update_queue_size"] == 20, down
        assert down["litellm_redis_spend_update_queue_size"] == 0, down
        # Spend goes on counting in memory, so budgets still hold during the outage.
        info = requests.get(p.url + "/key/info", headers=ADMIN, params={"key": key}, timeout=10)
        if info.status_code == 200:
            assert abs(info.json()["info"]["spend"] - sum(costs)) < 1e-9

        relay.restore()
        spend, rows = wait_for(
            lambda: ((t := db_totals(db, token))[1] == 25, t), 30, "everything written after the database returned"
        )[1]
        assert rows == 25
        assert abs(spend - sum(costs)) < 1e-9, (spend, sum(costs))
        assert requests.get(p.url + "/health/readiness", timeout=10).json()["db"] == "connected"
        back = wait_for(lambda: ((g := gauges(p))["sluice_database_up"] == 1, g), 10, "the metrics see it back")[1]
        assert back["litellm_in_memory_spend_update_queue_size"] == 0, back
        assert back["litellm_in_memory_daily_spend_update_queue_size"] == 0, back
        assert back["litellm_teams_count"] == 0 and back["litellm_total_users"] >= 0, back
    finally:
        p.stop()
        relay.close()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


class Load:
    """Chat requests from a few threads until stopped: the cost of every answered request, and
    every other answer."""

    def __init__(self, gw, key: str, threads: int = 4):
        self.gw, self.key = gw, key
        self.costs: list[float] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._run) for _ in range(threads)]

    def _run(self):
        while not self.stopping.is_set():
            try:
                r = chat(self.gw, self.key)
            except requests.RequestException as e:
                with self.lock:
                    self.failures.append(repr(e))
                continue
            with self.lock:
                if r.status_code == 200:
                    self.costs.append(float(r.headers["x-litellm-response-cost"]))
                else:
                    self.failures.append(f"{r.status_code} {r.text[:200]}")

    def served(self) -> int:
        with self.lock:
            return len(self.costs)

    def stop(self):
        self.stopping.set()
        for f in self.futures:
            f.result(timeout=30)
        self.pool.shutdown()


def sqlite_totals(path, token: str) -> tuple[float, int, float]:
    """The key's stored spend, its spend-log rows and their sum, read by another process."""
    con = sqlite3.connect(str(path), timeout=10)
    try:
        (spend,) = con.execute("SELECT spend FROM sluice_keys WHERE token = ?", (token,)).fetchone()
        rows, total = con.execute(
            "SELECT count(*), coalesce(sum(spend), 0) FROM sluice_spend_logs WHERE api_key = ?", (token,)
        ).fetchone()
    finally:
        con.close()
    return float(spend), int(rows), float(total)


def readiness(p) -> requests.Response:
    return requests.get(p.url + "/health/readiness", timeout=10)


def sqlite_outage_under_load(log_dir, mock, name: str, break_db, restore_db):
    """Load on one key; `break_db(data_dir, db_path)` under it, then `restore_db`. The gateway must
    stay up, serve the key throughout, say "degraded" meanwhile, and in the end hold every
    request's spend-log row and spend once, and keep a key made afterwards across a restart."""
    data = log_dir / f"{name}-{uuid.uuid4().hex[:6]}"
    path = data / "sluice.db"
    config = keys_config(mock.url, f"sqlite://{path}")
    p = start_gateway(log_dir, name, config)
    load = None
    try:
        r = requests.post(p.url + "/key/generate", headers=ADMIN, json={"key_alias": name}, timeout=10)
        assert r.status_code == 200, r.text
        key, token = r.json()["key"], r.json()["token"]
        load = Load(p, key)
        wait_for(lambda: (load.served() >= 20, load.served()), 15, "load running")

        break_db(data, path)
        body = wait_for(lambda: ((b := readiness(p).json())["status"] == "degraded", b), 10, "readiness degraded")[1]
        assert body["db"] == "Not connected" and "db_error" in body, body
        during = load.served()
        wait_for(lambda: (load.served() >= during + 20, load.served()), 15, "known keys served during the outage")
        assert readiness(p).json()["status"] == "degraded"

        restore_db(data, path)
        wait_for(lambda: (readiness(p).json()["status"] == "healthy", None), 15, "readiness healthy again")
        after = load.served()
        wait_for(lambda: (load.served() >= after + 20, load.served()), 15, "load served after the outage")
        load.stop()
        assert p.proc.poll() is None, f"the gateway died (exit {p.proc.poll()})"
        assert not load.failures, load.failures[:5]
        n, cost = len(load.costs), sum(load.costs)

        # Every request's spend and row, written once, including those from before the fault.
        spend, rows, total = wait_for(
            lambda: ((t := sqlite_totals(path, token))[1] == n and abs(t[0] - cost) < 1e-9, t),
            30,
            f"all {n} requests written",
        )[1]
        assert rows == n and abs(total - cost) < 1e-9 and abs(spend - cost) < 1e-9, (rows, n, total, spend, cost)

        # A key made after the outage is in the file, so it survives a restart.
        r = requests.post(p.url + "/key/generate", headers=ADMIN, json={"key_alias": f"{name}-after"}, timeout=10)
        assert r.status_code == 200, r.text
        new_key = r.json()["key"]
        p.stop()
        p = start_gateway(log_dir, f"{name}-restarted", config)
        for k in (key, new_key):
            r = chat(p, k)
            assert r.status_code == 200, r.text
        assert sqlite_totals(path, token)[1] >= n
    finally:
        if load is not None and not load.stopping.is_set():
            load.stop()
        p.stop()


def test_sqlite_file_deleted_under_load_loses_nothing(log_dir, mock):
    def delete(data, path):
        # The database and its directory go; a file where the directory was keeps it from
        # being made again, as a full or read-only disk would.
        shutil.rmtree(data)
        data.write_text("not a directory")

    sqlite_outage_under_load(log_dir, mock, "sqlite-deleted", delete, lambda data, path: data.unlink())


def chattr(flag: str, *paths) -> subprocess.CompletedProcess:
    return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)


def test_sqlite_file_made_immutable_under_load_loses_nothing(log_dir, mock):
    """`chattr +i` is what makes a file unwritable even for root. With WAL's memory-mapped
    `-shm` this killed the gateway with SIGBUS under load."""
    probe = log_dir / "chattr-probe"
    probe.write_text("")
    if shutil.which("chattr") is None or chattr("+i", probe).returncode != 0:
        pytest.skip("chattr +i needs root (CAP_LINUX_IMMUTABLE) and a file system that supports it")
    chattr("-i", probe)
    broken = []

    def make_immutable(data, path):
        # Every file of the database (the journal, a WAL and its index where there are) and the
        # directory, so none can be written, created or removed.
        broken.extend([*data.iterdir(), data])
        done = chattr("+i", *broken)
        assert done.returncode == 0, done.stderr

    try:
        sqlite_outage_under_load(
            log_dir, mock, "sqlite-immutable", make_immutable, lambda data, path: chattr("-i", *broken)
        )
    finally:
        if broken:
            chattr("-i", *broken)


def test_requests_refused_while_the_database_is_down_when_the_config_says_so(log_dir, mock):
    db = fresh_pg_database()
    relay = Relay()
    url = f"postgresql://root@127.0.0.1:{relay.port}/{db}"
    config = keys_config(mock.url, url, {"allow_requests_on_db_unavailable": False})
    p = start_gateway(log_dir, "db-outage-refuse", config)
    try:
        r = requests.post(p.url + "/key/generate", headers=ADMIN, json={"key_alias": "refuse"}, timeout=10)
        assert r.status_code == 200, r.text
        key, token = r.json()["key"], r.json()["token"]
        costs = []
        for _ in range(3):
            r = chat(p, key)
            assert r.status_code == 200, r.text
            costs.append(float(r.headers["x-litellm-response-cost"]))

        relay.cut()
        r = wait_for(lambda: ((r := readiness(p)).status_code == 503, r), 15, "readiness 503")[1]
        assert r.json()["detail"].startswith("Service Unhealthy"), r.text
        for k in (key, MASTER_KEY):
            r = chat(p, k)
            assert r.status_code == 503, r.text
            assert "allow_requests_on_db_unavailable" in r.json()["error"]["message"]

        relay.restore()
        wait_for(lambda: (readiness(p).status_code == 200, None), 15, "readiness back")
        assert readiness(p).json()["status"] == "healthy"
        r = chat(p, key)
        assert r.status_code == 200, r.text
        costs.append(float(r.headers["x-litellm-response-cost"]))
        spend, rows = wait_for(
            lambda: ((t := db_totals(db, token))[1] == len(costs), t), 30, "spend written after the outage"
        )[1]
        assert abs(spend - sum(costs)) < 1e-9, (spend, sum(costs))
    finally:
        p.stop()
        relay.close()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_postgres_down_under_load_loses_nothing(log_dir, mock):
    db = fresh_pg_database()
    relay = Relay()
    url = f"postgresql://root@127.0.0.1:{relay.port}/{db}"
    p = start_gateway(log_dir, "db-outage-load", keys_config(mock.url, url))
    load = None
    try:
        r = requests.post(p.url + "/key/generate", headers=ADMIN, json={"key_alias": "pg-load"}, timeout=10)
        assert r.status_code == 200, r.text
        key, token = r.json()["key"], r.json()["token"]
        load = Load(p, key)
        wait_for(lambda: (load.served() >= 20, load.served()), 15, "load running")

        relay.cut()
        body = wait_for(lambda: ((b := readiness(p).json())["status"] == "degraded", b), 15, "readiness degraded")[1]
        assert body["db"] == "Not connected" and body["pending_spend_logs"] >= 0, body
        # Down for a while, under load: the known key is served from memory throughout.
        outage_started, during = time.monotonic(), load.served()
        wait_for(lambda: (load.served() >= during + 50, load.served()), 20, "known key served during the outage")
        while time.monotonic() - outage_started < 3:
            time.sleep(0.25)
        assert readiness(p).json()["status"] == "degraded"

        relay.restore()
        wait_for(lambda: (readiness(p).json()["status"] == "healthy", None), 15, "readiness healthy again")
        load.stop()
        assert not load.failures, load.failures[:5]
        n, cost = len(load.costs), sum(load.costs)
        spend, rows = wait_for(
            lambda: ((t := db_totals(db, token))[1] == n and abs(t[0] - cost) < 1e-9, t),
            30,
            f"all {n} requests written after the database returned",
        )[1]
        assert rows == n and abs(spend - cost) < 1e-9, (rows, n, spend, cost)
    finally:
        if load is not None and not load.stopping.is_set():
            load.stop()
        p.stop()
        relay.close()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
