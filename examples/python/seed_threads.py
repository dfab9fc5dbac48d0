# The user's guide, "GIL & Threading", as a complete program. The guide's lines are kept as they
# are; only the import changed. Each stream fetches on its own thread with the GIL released.
from concurrent.futures import ThreadPoolExecutor
import ddstream as dd
import time
def fetch_metric(query):
    cfg = dd.DDStreamConfig()
    cfg.api_key = "..."
    cfg.app_key = "..."
    cfg.query = query
    cfg.range_start = int(time.time()) - 3600
    cfg.range_end = int(time.time())
    results = []
    for batch in dd.DDStream(cfg):
        results.extend(batch["avg"].tolist())
    return results
queries = ["avg:system.cpu.user{*}", "avg:system.mem.used{*}"]
with ThreadPoolExecutor(max_workers=2) as pool:
    futures = [pool.submit(fetch_metric, q) for q in queries]
    data = [f.result() for f in futures]
# (added so the run shows its result)
for q, values in zip(queries, data):
    print(f"{q}: {len(values)} points")
