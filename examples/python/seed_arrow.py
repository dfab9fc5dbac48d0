# The user's guide, "Arrow Support", as a complete program. The guide's lines are kept as they are;
# only the import changed. Its "... set other fields ..." are filled in with the lines of its
# "Config & Creation" section. Arrow needs no special build here (the cmake line is the guide's):
# with enable_arrow, each item is a ddstream.ArrowBatch, which is the IPC bytes this code reads
# and also a record batch (docs/arrow.md).
import time
# Build with Arrow:
# cmake -B build -DDDSTREAM_BUILD_PYTHON=ON -DDDSTREAM_ENABLE_ARROW=ON
import pyarrow as pa
import ddstream as dd
cfg = dd.DDStreamConfig()
cfg.enable_arrow = True
# ... set other fields ...
cfg.api_key = "YOUR_DD_API_KEY"
cfg.app_key = "YOUR_DD_APP_KEY"
cfg.query = "avg:system.cpu.user{*}"
cfg.range_start = int(time.time()) - 86400 # last 24 hours
cfg.range_end = int(time.time())
cfg.granularity = 60 # 1-min resolution
# Optional tuning:
cfg.chunk_seconds = 14400 # 4-hour chunks
cfg.enable_prefetch = True
cfg.log_level = 0 # 0=NONE … 4=DEBUG
stream = dd.DDStream(cfg)
for ipc_bytes in stream:
    # ipc_bytes is a bytes object containing an Arrow IPC RecordBatch
    reader = pa.ipc.open_stream(ipc_bytes)
    table = reader.read_all()
    # Columns: timestamp, avg, min, max, sum
    print(table.schema)
