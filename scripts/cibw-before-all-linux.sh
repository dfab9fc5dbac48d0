#!/usr/bin/env bash
# cibuildwheel's before-all on Linux (pyproject.toml [tool.cibuildwheel.linux]): runs as root in
# the manylinux_2_28 container (AlmaLinux 8), before any wheel is built. Provides what libddstream
# builds against: AlmaLinux 8's libcurl is 7.61, older than the 7.68 libddstream needs
# (curl_multi_poll, curl_multi_wakeup), and it has no libdeflate. So both are built from their
# release sources into /usr/local: libcurl shared (auditwheel bundles it with OpenSSL and
# nghttp2), libdeflate static (linked into libddstream). Their licences are kept under
# /usr/local/share/licenses/ for scripts/cibw-repair.sh. Not runnable on the project's machines
# (no network); docs/packaging.md.
set -euo pipefail
curl_version=8.11.1
deflate_version=1.22

dnf install -y -q openssl-devel libnghttp2-devel zlib-devel cmake xz
work="$(mktemp -d)"
cd "$work"

curl -fsSLO "https://curl.se/download/curl-${curl_version}.tar.xz"
tar xf "curl-${curl_version}.tar.xz"
(
  cd "curl-${curl_version}"
  # Only what a Datadog client needs: HTTPS (OpenSSL), HTTP/2, gzip. The CA store: OpenSSL's
  # default paths (see docs/packaging.md on CA bundles across distributions).
  ./configure -q --prefix=/usr/local --libdir=/usr/local/lib --disable-static --with-openssl \
    --with-nghttp2 --with-zlib --without-libpsl --without-libidn2 --without-brotli --without-zstd \
    --without-libssh2 --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
    --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smtp --disable-gopher \
    --disable-mqtt --disable-manual --without-ca-bundle --without-ca-path --with-ca-fallback
  make -s -j"$(nproc)"
  make -s install
  install -D -m 644 COPYING /usr/local/share/licenses/libcurl/COPYING
)

curl -fsSLO "https://github.com/ebiggers/libdeflate/releases/download/v${deflate_version}/libdeflate-${deflate_version}.tar.gz"
tar xf "libdeflate-${deflate_version}.tar.gz"
cmake -S "libdeflate-${deflate_version}" -B build-deflate -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DLIBDEFLATE_BUILD_SHARED_LIB=OFF \
  -DLIBDEFLATE_BUILD_GZIP=OFF
cmake --build build-deflate -j"$(nproc)"
cmake --install build-deflate
install -D -m 644 "libdeflate-${deflate_version}/COPYING" /usr/local/share/licenses/libdeflate/COPYING
ldconfig
