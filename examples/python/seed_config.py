# The user's guide, "Config & Creation", as a complete program. The guide's lines are kept as they
# are; only the import changed (`import _ddstream as dd` -> `import ddstream as dd`).
#
# To run it without credentials or network, start a fake server (ddstream.testing.FakeDatadog)
# and set DDSTREAM_BASE_URL to its URL; the library reads it when base_url is not set.
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
# (added so the run shows its result)
print(f"stream ready: {stream.chunk_count} chunks, credentials valid")
