# The user's guide, "Iteration Patterns" (range-for), after "Config & Creation" so that it is a
# complete program. The guide's lines are kept as they are; only the import changed.
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
# Range-for: raises RuntimeError on stream error
for batch in stream:
    print(f"{len(batch['timestamps'])} points")
