# Quickstart: receive syslog on unprivileged ports and archive it by hour.
#
#   make run                      # starts Sluice on this file
#   logger -n 127.0.0.1 -P 5514 --tcp --octet-count "hello from logger"
#   zcat data/archive/syslog/*/*/*/*.log.gz
#
# Everything Sluice writes lives under ./data.

data_dir         = "data"
shutdown_timeout = "10s"

admin {
  listen = "127.0.0.1:9514" # /metrics, /healthz, /readyz
}

input "syslog" "local" {
  listen = ["udp://127.0.0.1:5514", "tcp://127.0.0.1:5514"]
  stream = "syslog"
}

# Everything, byte-exact, in hourly gzip files per stream.
output "archive" "all" {
  path        = "data/archive/{stream}/%Y/%m/%d/%H.log.gz"
  compression = "gzip"
  level       = 1
  format      = "raw"
}

# Errors and worse, re-encoded as JSON lines, uncompressed.
output "archive" "errors" {
  path        = "data/errors/%Y-%m-%d.jsonl"
  compression = "none"
  format      = "json"
}

route "errors" {
  when     = severity <= "err"
  to       = [output.archive.errors]
  continue = true # errors also go to the full archive below
}

route "everything" {
  to = [output.archive.all]
}
