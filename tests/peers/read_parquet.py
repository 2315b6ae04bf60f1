"""Reads an auditwatch store the way other engines will: with duckdb and with pyarrow, each on
its own, from the hive-partitioned Parquet files.

  read_parquet.py STORE

Prints `READY`, then one JSON line: {"duckdb": {...}, "pyarrow": {...}}, each with
"events" (rows of events/), "sum_bytes", "distinct_ids", "days" (distinct dt partitions),
"sorted" (every file's rows by account then time), "dead_letters" (rows of dead_letters/) and
"alerts" (rows of alerts/, and "alert_ids": how many distinct). duckdb also runs each alert's
`evidence.sql` over a view `events` of the store: "evidence_sql_empty" counts the alerts whose
query finds no event, "evidence_ids_missing" the evidence event ids not in the store.
"""

import glob
import json
import os
import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

store = sys.argv[1]
events_glob = os.path.join(store, "events", "*", "*.parquet")
dead_glob = os.path.join(store, "dead_letters", "*", "*.parquet")
alerts_glob = os.path.join(store, "alerts", "*", "*.parquet")
print("READY", flush=True)


def with_duckdb():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    scan = f"read_parquet('{events_glob}', hive_partitioning = true)"
    events, sum_bytes, distinct_ids, days = con.execute(
        f"SELECT count(*), coalesce(sum(bytes), 0), count(DISTINCT id), count(DISTINCT dt) FROM {scan}"
    ).fetchone()
    # Within each file, no row is out of (account, time) order.
    unsorted = con.execute(
        f"""SELECT count(*) FROM (
              SELECT account, time,
                     lag(account) OVER w AS prev_account, lag(time) OVER w AS prev_time
              FROM read_parquet('{events_glob}', filename = true, file_row_number = true)
              WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))
            WHERE prev_account > account OR (prev_account = account AND prev_time > time)"""
    ).fetchone()[0]
    dead = 0
    if glob.glob(dead_glob):
        dead = con.execute(f"SELECT count(*) FROM read_parquet('{dead_glob}', hive_partitioning = true)").fetchone()[0]
    alerts, alert_ids, sql_empty, ids_missing = 0, 0, 0, 0
    if glob.glob(alerts_glob):
        alerts, alert_ids = con.execute(
            f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{alerts_glob}', hive_partitioning = true)"
        ).fetchone()
        con.execute(f"CREATE VIEW events AS SELECT * FROM {scan}")
        for (evidence,) in con.execute(f"SELECT evidence FROM read_parquet('{alerts_glob}')").fetchall():
            evidence = json.loads(evidence)
            # count(*) around the query: fetching its timestamps would need pytz.
            if con.execute(f"SELECT count(*) FROM ({evidence['sql']})").fetchone()[0] == 0:
                sql_empty += 1
            for event_id in evidence["event_ids"]:
                if con.execute("SELECT count(*) FROM events WHERE id = ?", [event_id]).fetchone()[0] == 0:
                    ids_missing += 1
    return {
        "events": events,
        "sum_bytes": int(sum_bytes),
        "distinct_ids": distinct_ids,
        "days": days,
        "sorted": unsorted == 0,
        "dead_letters": dead,
        "alerts": alerts,
        "alert_ids": alert_ids,
        "evidence_sql_empty": sql_empty,
        "evidence_ids_missing": ids_missing,
    }


def with_pyarrow():
    events = ds.dataset(os.path.join(store, "events"), format="parquet", partitioning="hive").to_table()
    sorted_files = True
    for path in glob.glob(events_glob):
        table = pq.read_table(path, columns=["account", "time"])
        keys = list(zip(table.column("account").to_pylist(), table.column("time").to_pylist()))
        sorted_files &= keys == sorted(keys)
    dead = 0
    if glob.glob(dead_glob):
        dead = ds.dataset(os.path.join(store, "dead_letters"), format="parquet", partitioning="hive").count_rows()
    alerts, alert_ids = 0, 0
    if glob.glob(alerts_glob):
        table = ds.dataset(os.path.join(store, "alerts"), format="parquet", partitioning="hive").to_table()
        alerts, alert_ids = table.num_rows, len(pc.unique(table.column("id")))
    return {
        "events": events.num_rows,
        "sum_bytes": int(pc.sum(events.column("bytes")).as_py() or 0),
        "distinct_ids": len(pc.unique(events.column("id"))),
        "days": len(pc.unique(events.column("dt"))),
        "sorted": sorted_files,
        "dead_letters": dead,
        "alerts": alerts,
        "alert_ids": alert_ids,
    }


print(json.dumps({"duckdb": with_duckdb(), "pyarrow": with_pyarrow()}), flush=True)
