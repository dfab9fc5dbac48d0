# The user's guide, "Batch Data", after "Config & Creation" so that it is a complete program.
# The guide's lines are kept as they are; only the import changed.
import ddstream as dd
import time
cfg = dd.DDStreamConfig()
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
# or validate credentials first:
err = dd.DDStream.validate(cfg)
if err:
    raise RuntimeError(f"Invalid credentials: {err}")
batch = stream.next_batch()
# Time and value arrays (numpy.ndarray, dtype int64/float64)
timestamps = batch["timestamps"] # Unix epoch seconds
avg_vals = batch["avg"]
min_vals = batch["min"]
max_vals = batch["max"]
sum_vals = batch["sum"]
# Chunk metadata
start_ms = batch["chunk_start_ms"]
end_ms = batch["chunk_end_ms"]
is_last = batch["is_last"]
# Statistics
print(f"Mean CPU: {avg_vals.mean():.2f}%")
print(f"Peak CPU: {max_vals.max():.2f}%")
