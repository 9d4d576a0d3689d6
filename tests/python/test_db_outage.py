"""The database goes away while requests flow: cached keys keep working, spend keeps
accumulating in memory, and everything is written when the database returns — no spend lost.

The outage is real: sluice reaches PostgreSQL through a TCP relay this test controls, and the
relay cuts every connection and refuses new ones for the length of the outage.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

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
        wait_for(
            lambda: (requests.get(p.url + "/health/readiness", timeout=10).json()["db"] == "Not connected", None),
            15,
            "readiness reports the outage",
        )
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
    finally:
        p.stop()
        relay.close()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
