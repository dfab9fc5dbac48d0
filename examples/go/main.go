// Command stream streams a Datadog metric with libddstream from Go, through cgo.
//
//	PKG_CONFIG_PATH=<where ddstream.pc is> go run . 'avg:system.cpu.user{*}' 86400 60
//
// Arguments: query, seconds back from now (default one day), granularity (default 60). Keys come
// from DD_API_KEY / DD_APP_KEY, the site from DD_SITE; DDSTREAM_BASE_URL points at a proxy or a
// fake server. The C library copies every string it is given, so the C strings made here are
// freed right after the call that takes them.
package main

/*
#cgo pkg-config: ddstream
#include <stdlib.h>
#include <ddstream.h>
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
	"unsafe"
)

func argInt(i int, fallback int64) int64 {
	if len(os.Args) > i {
		if v, err := strconv.ParseInt(os.Args[i], 10, 64); err == nil {
			return v
		}
	}
	return fallback
}

func main() {
	if C.ddstream_version_int() != C.DDSTREAM_VERSION_INT {
		fmt.Fprintln(os.Stderr, "libddstream does not match ddstream.h")
		os.Exit(1)
	}
	query := "avg:system.cpu.user{*}"
	if len(os.Args) > 1 {
		query = os.Args[1]
	}
	back, granularity := argInt(2, 86400), argInt(3, 60)

	var cfg C.ddstream_config
	C.ddstream_config_init(&cfg)
	cQuery := C.CString(query)
	cfg.query = cQuery
	end := time.Now().Unix()
	cfg.range_start = C.int64_t(end - back)
	cfg.range_end = C.int64_t(end)
	cfg.granularity = C.int64_t(granularity)

	var err C.ddstream_error
	var stream *C.ddstream_stream
	status := C.ddstream_open(&cfg, &stream, &err)
	C.free(unsafe.Pointer(cQuery))
	if status != C.DDSTREAM_OK {
		fmt.Fprintf(os.Stderr, "error: %s\n", C.GoString(&err.message[0]))
		os.Exit(1)
	}
	defer C.ddstream_close(stream)

	rows, batches, nulls := 0, 0, 0
	total := 0.0
	for {
		var batch *C.ddstream_batch
		status = C.ddstream_next(stream, -1, &batch, &err)
		if status != C.DDSTREAM_OK {
			break
		}
		n := int(batch.length)
		// Views of the C columns: valid until ddstream_batch_free, so used before it.
		timestamps := unsafe.Slice((*int64)(unsafe.Pointer(batch.timestamps)), n)
		avg := unsafe.Slice((*float64)(unsafe.Pointer(batch.avg)), n)
		for _, v := range avg {
			if math.IsNaN(v) {
				nulls++
			} else {
				total += v
			}
		}
		first, last := int64(0), int64(0)
		if n > 0 {
			first, last = timestamps[0], timestamps[n-1]
		}
		fmt.Printf("chunk %d/%d rows=%d series=%d first=%d last=%d progress=%.0f%%\n",
			int(batch.chunk_index)+1, int(batch.chunk_count), n, int(batch.series_count),
			first, last, 100*float64(C.ddstream_progress(stream)))
		rows += n
		batches++
		C.ddstream_batch_free(batch)
	}
	if status != C.DDSTREAM_END {
		fmt.Fprintf(os.Stderr, "error: %s: %s\n", C.GoString(C.ddstream_status_str(status)),
			C.GoString(&err.message[0]))
		os.Exit(1)
	}
	mean := 0.0
	if rows > nulls {
		mean = total / float64(rows-nulls)
	}
	fmt.Printf("done: %d batches, %d rows, %d without a value, mean avg %.6g\n", batches, rows, nulls, mean)
}
